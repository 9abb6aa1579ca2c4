#!/usr/bin/env python
"""Weight selection at the demo's scale: a Steps model started from its twin's
pretraining (selected, steps_mm.models.pretrained.selection) against one started
from random init, in pretraining, Mask R-CNN and UperNet.

    python tools/selection_demo.py --compare-dir DIR [--model convnext-t|swin-t|resnet-50]
        [--seeds 0 1 2] [--only det|seg] [--work-dir DIR] [--out DIR] [--reuse]

It builds on a finished `python tools/demo.py --compare --model M --seeds ...
--work-dir DIR` (same seeds and schedule): the twin's pretraining there is the
source of the selection; the Steps model's own pretraining and the twin's
fine-tuning there are the references. Per seed it tests the Steps classifier at
0 epochs at its own init and selected, pretrains the selected one with the
demo's recipe, and fine-tunes Mask R-CNN and UperNet from the selected model
before and after that pretraining (steps_lab.compare.from_twin). It prints every
start's mean ± std and the deltas against the Steps model's own pretraining and
against the twin, each with its 95% interval (seeds and validation images) and
verdict, and writes them to OUT/<model>_selection.json and .png.
"""
import argparse
import os.path as osp
import sys
import time

from steps_lab.compare import from_twin
from steps_lab import ROOT
from steps_lab.demo.chain import PAIRS, ChainRecipe
from steps_lab.compare.side_by_side import recorded_run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--compare-dir', required=True,
                        help='the --work-dir of a finished demo.py --compare')
    parser.add_argument('--model', choices=sorted(PAIRS), default='convnext-t')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--only', choices=('det', 'seg'), help='pretrain, then one stage')
    parser.add_argument('--work-dir', help='default: work_dirs/selection_demo/MODEL')
    parser.add_argument('--out', help='where the JSON and the plot go (default '
                                      'WORK_DIR/results)')
    parser.add_argument('--reuse', action='store_true',
                        help='summarise the finished runs in --work-dir again, '
                             'training nothing')
    args = parser.parse_args()
    work_dir = osp.abspath(args.work_dir or osp.join(ROOT, 'work_dirs', 'selection_demo',
                                                     args.model))
    compare_dir = osp.abspath(args.compare_dir)
    stages = (args.only, ) if args.only else ('det', 'seg')
    recipe = ChainRecipe()  # the comparison's (checked against its runs)
    start = time.time()
    command = 'python tools/selection_demo.py ' + ' '.join(sys.argv[1:])
    try:
        if args.reuse:
            study = from_twin.read_study(args.model, work_dir, recipe, args.seeds, stages)
        else:
            study = from_twin.run_selection(args.model, compare_dir, work_dir, recipe,
                                            args.seeds, stages)
        data = from_twin.summary(study, compare_dir, command)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        sys.exit(str(error))
    out_dir = args.out or osp.join(work_dir, 'results')
    if args.reuse:  # the training run's own command and wall time, where written
        data.update(recorded_run(out_dir, f'{args.model}_selection', args.seeds),
                    summarized_by=command)
    written = from_twin.write_selection_summary(data, out_dir, f'{args.model}_selection')
    print(f'\n[selection] {data["steps"]} from {data["twin"]}, seeds {args.seeds} '
          f'(total {time.time() - start:.0f}s; {written["json"]}, plotted to '
          f'{written["png"]})\n')
    print(from_twin.delta_table(data))


if __name__ == '__main__':
    main()
