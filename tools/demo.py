#!/usr/bin/env python
"""The main job, the paper's chain at laptop scale with the stock tools: pretrain
Steps-ConvNeXt-T on the built-in ImageNet-format set, fine-tune its Mask R-CNN and
UperNet from that checkpoint on the built-in detection/segmentation set, test each,
and print the metrics. --compare runs a Steps model and its twin (Steps-ConvNeXt-T
and ConvNeXt-T by default; --model swin-t, resnet-50, deit-s) through the same
chain and prints the paper's comparison tables with a 95% interval and a verdict
per metric.

    python tools/demo.py [--work-dir work_dirs/demo] [--only det|seg]
        [--pretrain-epochs 12] [--compare-scratch]
    python tools/demo.py --compare [--model convnext-t|swin-t|resnet-50|deit-s]
        [--head cascade|dino|mask2former] [--seeds 0 1 2] [--serial] [--out DIR]
        [--work-dir work_dirs/demo_compare]

Every stage is `mim train` / `mim test` of mmpretrain, mmdet or mmseg on a config
that inherits the shipped one (steps_lab.demo.chain). Full logs go to
WORK_DIR/.../<stage>/*.log; training losses are plotted to WORK_DIR/losses.png.
--compare-scratch also fine-tunes from scratch, the same iterations. --compare trains
both twins with the same seeds (the built-in data are the same for every seed) and
prints the tables of tools/results_table.py (params, FLOPs at the demo's sizes,
top-1, AP^box, AP^mask, mIoU, img/s, delta; mean ± std over several --seeds), writes
them to WORK_DIR/results/, then per metric the 95% interval of the Steps-minus-twin
delta (bootstrap over seeds and, within a seed, over the validation images) and its
verdict: ahead, behind or within noise (steps_lab.results.intervals). The per-seed
figures go to OUT/<model>.json and .png, both models' losses to OUT/<model>_losses.png.
The two models train side by side, one thread each (--serial: one after the other).
--head: the pretraining, then that head alone (OUT/<model>_<head>.*). A stage already
trained and tested in its job dir on the same config is reused; before training, the
estimated wall time. More: docs/demo.md.
"""
import argparse
import os
import os.path as osp
import sys
import time

from steps_lab.demo import build_classification_dataset, build_demo_datasets
from steps_lab import ROOT
from steps_lab.demo.chain import (HEADS, PAIRS, STAGES, STEPS, TITLES, ChainRecipe,
                                  pairs_with, plot_curves, run_chain)
from steps_lab.results import ResultsError, read_run

STAGE_OF = {codebase: stage for stage, (codebase, _) in STAGES.items()}


def build_data(work_dir: str, recipe: ChainRecipe) -> str:
    print('[demo] building the built-in datasets (scikit-image photographs, pasted '
          'shapes with exact masks)', flush=True)
    data_dir = osp.join(work_dir, 'data')
    build_demo_datasets(data_dir, num_train=recipe.num_train, num_val=recipe.num_val,
                        size=recipe.size)
    build_classification_dataset(data_dir, num_train=recipe.cls_train,
                                 num_val=recipe.cls_val)
    return data_dir


def main_job(args, recipe: ChainRecipe, work_dir: str, data_dir: str, start: float):
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


def compare(args, recipe: ChainRecipe, work_dir: str, data_dir: str, start: float):
    from steps_lab import results
    from steps_lab.compare import side_by_side
    stages = side_by_side.compare_stages((args.only, ) if args.only else ('det', 'seg'),
                                         args.head)
    if args.reuse:
        result = side_by_side.read_compare(args.model, work_dir, recipe, args.seeds, stages,
                                           args.head)
    else:
        result = side_by_side.run_compare(args.model, data_dir, work_dir, recipe,
                                          args.seeds, stages, parallel=not args.serial,
                                          head=args.head)
    title = {s: TITLES[args.head if args.head and HEADS[args.head] == s else s]
             for s in ('pretrain', ) + stages}
    panels = {title[s]: {} for s in ('pretrain', ) + stages}
    for model in result.models:
        for seed, job_dirs in result.job_dirs[model.name].items():
            label = model.name + (f', seed {seed}' if len(args.seeds) > 1 else '')
            for run in map(read_run, job_dirs):
                panels[title[STAGE_OF[run.scope]]][label] = run.curve()
    out_dir = args.out or osp.join(work_dir, 'results')
    stem = side_by_side.summary_stem(args.model, args.head)
    plot = plot_curves(panels, osp.join(out_dir, f'{stem}_losses.png'))
    print('[demo] bootstrapping the deltas over seeds and validation images', flush=True)
    side_by_side.build(result)
    # a head's tables beside the default heads' (which stay where they were)
    tables = osp.join(work_dir, 'results', *([stem] if args.head else []))
    paths = results.write(result.tables, tables, recipe.flops_shapes())
    command = 'python tools/demo.py ' + ' '.join(sys.argv[1:])
    data = side_by_side.summary(result, command)
    if args.reuse:  # the training run's own command and wall time, where written
        data.update(side_by_side.recorded_run(out_dir, stem, args.seeds),
                    summarized_by=command)
    written = side_by_side.write_summary(data, out_dir, stem)
    models = ' against '.join(m.name for m in result.models)
    print(f'\n[demo] {models}, seeds {args.seeds} (total {time.time() - start:.0f}s; '
          f'losses plotted to {plot}; tables in {osp.dirname(paths["md"])}; per-seed '
          f'figures and intervals in {written["json"]}, plotted to {written["png"]})\n')
    print(results.markdown(result.tables, recipe.flops_shapes()))
    print(side_by_side.verdict_table(data))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', help='default: work_dirs/demo, with --compare '
                                           'work_dirs/demo_compare')
    parser.add_argument('--only', choices=('det', 'seg'), help='pretrain, then one stage')
    parser.add_argument('--pretrain-epochs', type=int, default=ChainRecipe.pretrain_epochs)
    parser.add_argument('--det-iters', type=int, default=ChainRecipe.det_iters,
                        help='detector fine-tuning iterations (Mask R-CNN, or the --head '
                             'detector; a longer schedule: 540)')
    parser.add_argument('--finetune-lr', type=float, default=ChainRecipe.finetune_lr,
                        help='the det/seg fine-tuning learning rate (AdamW, batch 2)')
    parser.add_argument('--seg-iters', type=int, default=ChainRecipe.seg_iters,
                        help='segmentor fine-tuning iterations (UperNet, or the --head '
                             'segmentor; a longer schedule: 180)')
    parser.add_argument('--compare-scratch', action='store_true',
                        help='also fine-tune from scratch, the same iterations')
    parser.add_argument('--compare', action='store_true',
                        help='a Steps model against its twin (--model), same chain')
    parser.add_argument('--model', choices=sorted(PAIRS), default='convnext-t',
                        help='with --compare: which pair (default convnext-t)')
    parser.add_argument('--head', choices=sorted(HEADS),
                        help='with --compare: pretraining, then this head alone: '
                        + '; '.join(f'{h} ({HEADS[h]}: {", ".join(pairs_with(h))})'
                                    for h in sorted(HEADS)))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='with --compare: train each model once per seed')
    parser.add_argument('--serial', action='store_true',
                        help='with --compare: one model after the other, all threads '
                             'each (default: both at once, one thread each)')
    parser.add_argument('--reuse', action='store_true',
                        help='with --compare: summarise the finished runs of an earlier '
                             '--compare in --work-dir (same --model, --head, --seeds, '
                             '--only and schedule) again, training nothing')
    parser.add_argument('--out', help='with --compare: where the per-seed JSON and the '
                                      'plots go (default WORK_DIR/results)')
    args = parser.parse_args()
    if args.compare and args.compare_scratch:
        parser.error('--compare and --compare-scratch are separate runs')
    for option in ('model', 'head', 'seeds', 'serial', 'reuse', 'out'):
        if getattr(args, option) != parser.get_default(option) and not args.compare:
            parser.error(f'--{option} needs --compare')
    if args.head and args.only:
        parser.error(f'--head {args.head} runs its {HEADS[args.head]} stage alone: '
                     f'leave out --only')
    if args.head and args.model not in pairs_with(args.head):
        parser.error(f'--model {args.model} has no {args.head} head; the pairs with one: '
                     f'{", ".join(pairs_with(args.head))}')
    work_dir = osp.abspath(args.work_dir or osp.join(
        ROOT, 'work_dirs', 'demo_compare' if args.compare else 'demo'))
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    if args.pretrain_epochs < 2:
        parser.error('--pretrain-epochs must be at least 2 (one warm-up epoch, then the '
                     'cosine schedule)')
    for option in ('det_iters', 'seg_iters'):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.finetune_lr <= 0:
        parser.error('--finetune-lr must be positive')
    # the main job shows the chain working: a quarter of the validation images
    # (their test costs) is enough there; a comparison needs them all
    sizes = {} if args.compare else dict(num_val=32, cls_val=16)
    recipe = ChainRecipe(pretrain_epochs=args.pretrain_epochs, det_iters=args.det_iters,
                         seg_iters=args.seg_iters, finetune_lr=args.finetune_lr, **sizes)
    # --reuse reads the runs as they were tested: their data stays as it is
    data_dir = (osp.join(work_dir, 'data') if args.compare and args.reuse
                else build_data(work_dir, recipe))
    try:
        (compare if args.compare else main_job)(args, recipe, work_dir, data_dir, start)
    except (FileNotFoundError, RuntimeError, ResultsError) as error:  # e.g. --reuse of
        sys.exit(str(error))  # a run never made: the message says what to run first


if __name__ == '__main__':
    main()
