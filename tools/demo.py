#!/usr/bin/env python
"""The main job, the paper's chain at laptop scale with the stock tools: pretrain
Steps-ConvNeXt-T on the built-in ImageNet-format set, fine-tune its Mask R-CNN and
UperNet from that checkpoint on the built-in detection/segmentation set, test each,
and print the metrics. --compare runs Steps-ConvNeXt-T and its ConvNeXt-T twin
through the same chain and prints the paper's comparison tables.

    python tools/demo.py [--work-dir work_dirs/demo] [--only det|seg]
        [--pretrain-epochs 12] [--compare-scratch]
    python tools/demo.py --compare [--seeds 0 1 2] [--work-dir work_dirs/demo_compare]

Every stage is `mim train` / `mim test` of mmpretrain, mmdet or mmseg on a config
that inherits the shipped one (steps_mm.demo.chain). Full logs go to
WORK_DIR/.../<stage>/*.log; training losses are plotted to WORK_DIR/losses.png.
--compare-scratch also fine-tunes from scratch, the same iterations. --compare trains
both twins with the same seeds (the built-in data are the same for every seed) and
prints the tables of tools/results_table.py (params, FLOPs at the demo's sizes,
top-1, AP^box, AP^mask, mIoU, img/s, delta; mean ± std over several --seeds), writes
them to WORK_DIR/results/, and plots both models' losses in one figure.
"""
import argparse
import os
import os.path as osp
import sys
import time

from steps_mm.demo import build_classification_dataset, build_demo_datasets
from steps_mm.demo.chain import (BASELINE, ROOT, STAGES, STEPS, Recipe, plot_curves,
                                  run_chain)
from steps_mm.results import ResultsError, read_run

TITLES = {'pretrain': 'pretraining (mmpretrain)', 'det': 'Mask R-CNN (mmdet)',
          'seg': 'UperNet (mmseg)'}


def build_data(work_dir: str, recipe: Recipe) -> str:
    print('[demo] building the built-in datasets (scikit-image photographs, pasted '
          'shapes with exact masks)', flush=True)
    data_dir = osp.join(work_dir, 'data')
    build_demo_datasets(data_dir, num_train=recipe.num_train, num_val=recipe.num_val,
                        size=recipe.size)
    build_classification_dataset(data_dir)
    return data_dir


def main_job(args, recipe: Recipe, work_dir: str, data_dir: str, start: float):
    stages = (args.only, ) if args.only else ('det', 'seg')
    starts = ('pretrained', 'scratch') if args.compare_scratch else ('pretrained', )
    runs = run_chain(STEPS, data_dir, work_dir, recipe, stages=stages, starts=starts)
    panels = {TITLES['pretrain']: {STEPS.name: read_run(runs['pretrain'].job_dir).curve()}}
    for stage in stages:
        panels[TITLES[stage]] = {
            f'from {s}': read_run(runs[stage if s == 'pretrained' else f'{stage}/{s}']
                                  .job_dir).curve() for s in starts}
    plot = plot_curves(panels, osp.join(work_dir, 'losses.png'))
    print(f'\n[demo] results (total {time.time() - start:.0f}s; losses plotted to {plot})')
    pre = runs['pretrain']
    print(f'pretraining {STEPS.pretrain}: top-1 {pre.metrics["accuracy/top1"]:.2f}% on the '
          f'built-in validation set after {recipe.pretrain_epochs} epochs '
          f'({pre.train_seconds:.0f} s)')
    print('| config | metric | ' + ' | '.join(f'from {s}' for s in starts)
          + ' |\n|---|---|' + '---|' * len(starts))
    for stage in stages:
        for key in STAGES[stage][1]:
            cells = ' | '.join(
                f"{runs[stage if s == 'pretrained' else f'{stage}/{s}'].metrics[key]:.3f}"
                for s in starts)
            print(f'| {getattr(STEPS, stage)} ({recipe.iters(stage)} iterations) | {key} '
                  f'| {cells} |')


def compare(args, recipe: Recipe, work_dir: str, data_dir: str, start: float):
    from steps_mm import results
    stages = (args.only, ) if args.only else ('det', 'seg')
    job_dirs, panels = [], {TITLES[s]: {} for s in ('pretrain', ) + stages}
    for seed in args.seeds:
        for side, model in (('steps', STEPS), ('baseline', BASELINE)):
            runs = run_chain(model, data_dir, osp.join(work_dir, f'seed{seed}', side),
                             recipe, seed=seed, stages=stages)
            for stage, run in runs.items():
                job_dirs.append(run.job_dir)
                label = model.name + (f', seed {seed}' if len(args.seeds) > 1 else '')
                panels[TITLES[stage]][label] = read_run(run.job_dir).curve()
    plot = plot_curves(panels, osp.join(work_dir, 'losses.png'))
    counter = results.FlopCounter(recipe.flops_shapes())
    tables = results.build_tables(results.read_runs(job_dirs), counter)
    paths = results.write(tables, osp.join(work_dir, 'results'), recipe.flops_shapes())
    print(f'\n[demo] {STEPS.name} against {BASELINE.name}, seeds {args.seeds} (total '
          f'{time.time() - start:.0f}s; losses plotted to {plot}; tables in '
          f'{osp.dirname(paths["md"])})\n')
    print(results.markdown(tables, recipe.flops_shapes()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', help='default: work_dirs/demo, with --compare '
                                           'work_dirs/demo_compare')
    parser.add_argument('--only', choices=('det', 'seg'), help='pretrain, then one stage')
    parser.add_argument('--pretrain-epochs', type=int, default=Recipe.pretrain_epochs)
    parser.add_argument('--compare-scratch', action='store_true',
                        help='also fine-tune from scratch, the same iterations')
    parser.add_argument('--compare', action='store_true',
                        help='Steps-ConvNeXt-T against its ConvNeXt-T twin, same chain')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='with --compare: train each model once per seed')
    args = parser.parse_args()
    if args.compare and args.compare_scratch:
        parser.error('--compare and --compare-scratch are separate runs')
    if len(args.seeds) > 1 and not args.compare:
        parser.error('--seeds needs --compare')
    work_dir = osp.abspath(args.work_dir or osp.join(
        ROOT, 'work_dirs', 'demo_compare' if args.compare else 'demo'))
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    recipe = Recipe(pretrain_epochs=args.pretrain_epochs)
    data_dir = build_data(work_dir, recipe)
    try:
        (compare if args.compare else main_job)(args, recipe, work_dir, data_dir, start)
    except (RuntimeError, ResultsError) as error:
        sys.exit(str(error))


if __name__ == '__main__':
    main()
