#!/usr/bin/env python
"""The main job, the paper's chain at laptop scale with the stock tools: pretrain
Steps-ConvNeXt-T on the built-in ImageNet-format set, fine-tune its Mask R-CNN and
UperNet from that checkpoint (with --compare-scratch also from scratch) on the built-in
detection/segmentation set, test each, and print the metrics.

    python tools/demo.py [--work-dir work_dirs/demo] [--only det|seg]
        [--pretrain-epochs 12] [--compare-scratch]

Every stage is ``mim train`` / ``mim test`` of mmpretrain, mmdet or mmseg on a config
that inherits the shipped one. Full logs go to WORK_DIR/<stage>/*.log; losses are
plotted to WORK_DIR/losses.png.
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
PRETRAIN = 'configs/imagenet/steps-convnext-tiny_32xb128_in1k.py'
# ConvNeXt's 1e-6 layer scale leaves the blocks near identity after a few epochs;
# the det/seg configs (and so the from-scratch runs) use 1.0: so does pretraining
PRETRAIN_BACKBONE = dict(layer_scale_init_value=1.0)
JOBS = {
    # name: (shipped config, codebase, fine-tuning iterations, metrics to report)
    'det': ('configs/steps_convnext_maskrcnn.py', 'mmdet', 240,
            ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50')),
    'seg': ('configs/steps_convnext_upernet.py', 'mmseg', 80, ('mIoU', 'aAcc')),
}


# mmdet/mmseg log iterations, mmpretrain epochs: Iter(train) [ 10/240], Epoch(train) [3][10/12]
PROGRESS = re.compile(r'(?:Iter|Epoch)\((train|test|val)\) +(\[\d+\])?\[ *(\d+)/(\d+)\]')
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
                stage, epoch, i, n = match.groups()
                print(f'    {stage} {"epoch " + epoch[1:-1] + " " if epoch else ""}{i}/{n}'
                      + (f'  loss {loss.group(1)}' if loss else '')
                      + (f'  eta {eta.group(1)}' if eta else ''), flush=True)
            elif any(k in line for k in ('AutoAmpOptimWrapper:', 'load_pretrained',
                                         'Error')):
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


def scalars(train_dir):
    """The training log rows (iteration, loss) mmengine wrote for ``train_dir``."""
    files = sorted(glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json')))
    rows = [json.loads(line) for line in open(files[-1])] if files else []
    return [(r.get('iter', r.get('step')), r['loss']) for r in rows if 'loss' in r]


def plot_losses(curves, out_file):
    """``curves``: panel title -> {label: train dir}."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5))
    axes = axes if len(curves) > 1 else [axes]
    for ax, (title, runs) in zip(axes, curves.items()):
        for label, train_dir in runs.items():
            rows = scalars(train_dir)
            ax.plot([r[0] for r in rows], [r[1] for r in rows], marker='.', label=label)
        ax.set(title=title, xlabel='iteration', ylabel='training loss')
        ax.grid(alpha=.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)


def train_and_test(codebase, cfg, job_dir, checkpoint_name):
    """``mim train`` then ``mim test`` of the checkpoint it wrote -> (metrics,
    training seconds, train dir)."""
    train_dir, test_dir = osp.join(job_dir, 'train'), osp.join(job_dir, 'test')
    seconds = run(['mim', 'train', codebase, cfg, '--work-dir', train_dir],
                  osp.join(job_dir, 'train.log'))
    run(['mim', 'test', codebase, cfg, '--checkpoint',
         osp.join(train_dir, checkpoint_name), '--work-dir', test_dir],
        osp.join(job_dir, 'test.log'))
    return last_metrics(test_dir), seconds, train_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--only', choices=sorted(JOBS))
    parser.add_argument('--pretrain-epochs', type=int, default=12)
    parser.add_argument('--compare-scratch', action='store_true',
                        help='also fine-tune from scratch, the same iterations')
    args = parser.parse_args()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()

    sys.path.insert(0, ROOT)
    from steps_mm.demo import (build_classification_dataset, build_demo_datasets,
                               write_demo_config, write_pretrain_config)
    print('[demo] building the built-in datasets (scikit-image photographs, pasted '
          'shapes with exact masks)', flush=True)
    data_dir = osp.join(work_dir, 'data')
    build_demo_datasets(data_dir, num_train=64, num_val=16)
    build_classification_dataset(data_dir)

    epochs = args.pretrain_epochs
    print(f'[demo] pretrain: {PRETRAIN} on the built-in ImageNet-format set, '
          f'{epochs} epochs', flush=True)
    job_dir = osp.join(work_dir, 'pretrain')
    cfg = write_pretrain_config(osp.join(ROOT, PRETRAIN), data_dir,
                                osp.join(job_dir, 'config.py'), epochs=epochs,
                                backbone_options=PRETRAIN_BACKBONE)
    pre_metrics, pre_time, pre_dir = train_and_test('mmpretrain', cfg, job_dir,
                                                    f'epoch_{epochs}.pth')
    pretrained = osp.join(pre_dir, f'epoch_{epochs}.pth')
    curves = {'pretraining': {'Steps-ConvNeXt-T': pre_dir}}

    starts = ['pretrained'] + (['scratch'] if args.compare_scratch else [])
    results = {}
    for name, (config, codebase, iters, keys) in JOBS.items():
        if args.only and name != args.only:
            continue
        curves[name] = {}
        for start_from in starts:
            job_dir = osp.join(work_dir, f'{name}_{start_from}')
            cfg = write_demo_config(
                osp.join(ROOT, config), data_dir, osp.join(job_dir, 'config.py'),
                iters=iters, codebase=codebase,
                backbone_checkpoint=pretrained if start_from == 'pretrained'
                else 'scratch')
            print(f'[demo] {name}: {config} from {start_from}, {iters} iterations',
                  flush=True)
            run_start = time.time()
            metrics, seconds, train_dir = train_and_test(codebase, cfg, job_dir,
                                                         f'iter_{iters}.pth')
            print(f'[demo] {name} from {start_from}: trained in {seconds:.0f} s, '
                  f'trained and tested in {time.time() - run_start:.0f} s', flush=True)
            results[name, start_from] = (config, keys, metrics, seconds)
            curves[name][f'from {start_from}'] = train_dir

    plot = osp.join(work_dir, 'losses.png')
    plot_losses(curves, plot)
    print(f'\n[demo] results (total {time.time() - start:.0f}s; losses plotted to '
          f'{plot})')
    print(f'pretraining {PRETRAIN}: top-1 {pre_metrics["accuracy/top1"]:.2f}% on the '
          f'built-in validation set after {epochs} epochs ({pre_time:.0f} s)')
    print('| config | metric | ' + ' | '.join(f'from {s}' for s in starts)
          + ' |\n|---|---|' + '---|' * len(starts))
    for name, (config, codebase, iters, keys) in JOBS.items():
        if (name, 'pretrained') not in results:
            continue
        for key in keys:
            cells = ' | '.join(f'{results[name, s][2][key]:.3f}' for s in starts)
            print(f'| {config} ({iters} iterations) | {key} | {cells} |')


if __name__ == '__main__':
    main()
