#!/usr/bin/env python
"""The main job: train and evaluate Steps-ConvNeXt-T Mask R-CNN and UperNet with the
stock tools on the built-in dataset, and print the metrics before and after training.

    python tools/demo.py [--work-dir work_dirs/demo] [--only det|seg]

Each model runs through ``mim test`` (the untrained weights), ``mim train`` and
``mim test`` (the trained checkpoint) on a config that inherits the shipped one.
Full logs go to WORK_DIR/<name>/*.log; losses are plotted to WORK_DIR/losses.png.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
JOBS = {
    # name: (shipped config, codebase, training iterations, metrics to report)
    'det': ('configs/steps_convnext_maskrcnn.py', 'mmdet', 240,
            ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50')),
    'seg': ('configs/steps_convnext_upernet.py', 'mmseg', 80, ('mIoU', 'aAcc')),
}


PROGRESS = re.compile(r'Iter\((train|test|val)\) +\[ *(\d+)/(\d+)\]')
ETA, LOSS = re.compile(r'\beta: (\S+)'), re.compile(r'\bloss: ([\d.]+)')


def run(cmd, log_file):
    """Run ``cmd``, keep its full output in ``log_file``, echo a compact progress
    line for each logged iteration."""
    print('$', ' '.join(cmd), flush=True)
    start = time.time()
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=ROOT,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        for line in proc.stdout:
            log.write(line)
            match = PROGRESS.search(line)
            if match:
                eta, loss = ETA.search(line), LOSS.search(line)
                print('    {} {}/{}'.format(*match.groups())
                      + (f'  loss {loss.group(1)}' if loss else '')
                      + (f'  eta {eta.group(1)}' if eta else ''), flush=True)
            elif 'AutoAmpOptimWrapper:' in line or 'Error' in line:
                print('   ', line.split(' - INFO - ')[-1].rstrip(), flush=True)
        proc.wait()
    if proc.returncode:
        sys.exit(f'failed ({proc.returncode}) after {time.time() - start:.0f}s: '
                 f'{" ".join(cmd)}\nsee {log_file}')
    return time.time() - start


def last_metrics(work_dir):
    """The metrics mmengine's LoggerHook dumped after the newest test run."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    if not files:
        sys.exit(f'no metrics json under {work_dir}')
    with open(files[-1]) as f:
        return json.load(f)


def save_untrained(config, out_file):
    """The model as the stock tools would initialise it, saved as a checkpoint."""
    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import MODELS, init_default_scope

    MMLogger.get_instance('demo', log_level='WARNING')  # no per-parameter init log
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(cfg.randomness.seed)  # the same untrained weights every run
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=0)), out_file)


def plot_losses(train_dirs, out_file):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(train_dirs), figsize=(5 * len(train_dirs), 3.5))
    axes = axes if len(train_dirs) > 1 else [axes]
    for ax, (name, work_dir) in zip(axes, train_dirs.items()):
        scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
        rows = [json.loads(line) for line in open(scalars[-1])] if scalars else []
        rows = [r for r in rows if 'loss' in r]
        ax.plot([r['iter'] for r in rows], [r['loss'] for r in rows], marker='.')
        ax.set(title=f'{name}: training loss', xlabel='iteration', ylabel='loss')
        ax.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--only', choices=sorted(JOBS))
    args = parser.parse_args()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()

    sys.path.insert(0, ROOT)
    from steps_mm.demo import build_demo_datasets, write_demo_config
    print('[demo] building the built-in dataset (scikit-image photographs, pasted '
          'shapes with exact masks)', flush=True)
    data_dir = osp.join(work_dir, 'data')
    build_demo_datasets(data_dir, num_train=64, num_val=16)

    results, train_dirs = {}, {}
    for name, (config, codebase, iters, keys) in JOBS.items():
        if args.only and name != args.only:
            continue
        job_dir = osp.join(work_dir, name)
        os.makedirs(job_dir, exist_ok=True)
        cfg = write_demo_config(osp.join(ROOT, config), data_dir,
                                osp.join(job_dir, 'config.py'), iters=iters,
                                codebase=codebase)
        print(f'[demo] {name}: {config} on the built-in data, {iters} iterations',
              flush=True)
        untrained = osp.join(job_dir, 'untrained.pth')
        save_untrained(cfg, untrained)
        run(['mim', 'test', codebase, cfg, '--checkpoint', untrained,
             '--work-dir', osp.join(job_dir, 'test_untrained')],
            osp.join(job_dir, 'test_untrained.log'))
        before = last_metrics(osp.join(job_dir, 'test_untrained'))
        train_time = run(['mim', 'train', codebase, cfg, '--work-dir',
                          osp.join(job_dir, 'train')], osp.join(job_dir, 'train.log'))
        checkpoint = osp.join(job_dir, 'train', f'iter_{iters}.pth')
        run(['mim', 'test', codebase, cfg, '--checkpoint', checkpoint,
             '--work-dir', osp.join(job_dir, 'test_trained')],
            osp.join(job_dir, 'test_trained.log'))
        after = last_metrics(osp.join(job_dir, 'test_trained'))
        results[name] = (config, keys, before, after, train_time)
        train_dirs[name] = osp.join(job_dir, 'train')

    plot = osp.join(work_dir, 'losses.png')
    plot_losses(train_dirs, plot)
    print(f'\n[demo] results (total {time.time() - start:.0f}s; losses plotted to '
          f'{plot})')
    print('| config | metric | untrained | trained | training time |\n|---|---|---|---|---|')
    for name, (config, keys, before, after, train_time) in results.items():
        for key in keys:
            print(f'| {config} | {key} | {before[key]:.3f} | {after[key]:.3f} '
                  f'| {train_time:.0f} s |')


if __name__ == '__main__':
    main()
