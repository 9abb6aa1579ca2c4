#!/usr/bin/env python
"""Frozen-backbone probes of both twins of an earlier `tools/demo.py --compare` run:
how much of each dense task each stage of the pretrained backbones holds before any
fine-tuning (a linear box classifier on RoIAlign-pooled boxes, a linear per-pixel
classifier; steps_lab/compare/frozen_probes.py).

    python tools/frozen_probes.py --model swin-t --seeds 0 1 2 --work-dir WORK_DIR --out DIR

WORK_DIR is the compare run's --work-dir (same --model and --seeds). Writes
DIR/<model>_probes.json (per seed, per stage) and DIR/<model>_probes.png (mean ± std
over seeds) and prints the table.
"""
import sys

from steps_lab.report import markdown_table, tool_parser


def main():
    from steps_lab.demo.chain import PAIRS
    parser = tool_parser(__doc__)
    parser.add_argument('--model', choices=sorted(PAIRS), default='convnext-t')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--work-dir', required=True, help="the compare run's --work-dir")
    parser.add_argument('--out', required=True, help='where the JSON and the plot go')
    args = parser.parse_args()
    from steps_lab.compare import frozen_probes
    try:
        data = frozen_probes.probe_comparison(args.model, args.work_dir, args.seeds)
    except FileNotFoundError as error:
        sys.exit(str(error))
    paths = frozen_probes.write_probes(data, args.out, args.model)
    rows = []
    for probe in ('box', 'pixel'):
        for model in (data['steps'], data['twin']):
            values = [row[model][probe] for row in data['per_seed'].values()]
            rows.append([probe, model] + [
                f'{sum(v[s] for v in values) / len(values):.1f}'
                for s in range(len(values[0]))])
    stages = len(rows[0]) - 2
    print(markdown_table(['probe', 'model'] + [f'stage {s + 1}' for s in range(stages)],
                         rows))
    print(f"(mean over seeds {args.seeds}; {paths['json']}, {paths['png']})")


if __name__ == '__main__':
    main()
