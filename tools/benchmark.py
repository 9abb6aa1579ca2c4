#!/usr/bin/env python
"""Speed and peak memory of Steps models against their baselines and peers,
measured in one process, interleaved (A B C A B C ...), median after warm-up.

Backbone mode (default) times bare backbones on random 224x224 images; config
mode (``--mode config``) times whole models built from configs (Mask R-CNN at
800x1333, UperNet at 512x512) on synthetic samples. Each *group* is timed on its
own; ratios are to the group's first model (``--baseline`` picks another).

    python tools/benchmark.py                          # the backbone groups, CPU
    python tools/benchmark.py --mode config            # Mask R-CNN, UperNet
    python tools/benchmark.py --models Swin-T,Steps-Swin-T,Swin-T+explicit
    python tools/benchmark.py --device cuda            # fp32 and fp16 autocast
    python tools/benchmark.py --breakdown              # + where the time goes

A model name may carry options after '+': ``+explicit`` (matmul + softmax
attention instead of the fused kernel), ``+cl`` (channels_last input and
weights), ``+compile`` (torch.compile of the backbone). Results go to
``--out``.md / .json / .png (a Markdown table, the raw numbers, a bar plot).
Peak memory is what a step allocates beyond what existed before it: the CUDA
allocator's peak on CUDA; on CPU the running sum of the tensor allocations and
frees that torch's profiler records (one extra, untimed step). ``--breakdown``
sums each op's self time into categories (matmul & conv, attention, copies,
norms, elementwise) and shows them against the baseline's.
"""
import json
import os
import os.path as osp
import sys
import time

import torch

from steps_lab import benchmark
from steps_lab.report import tool_parser

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))  # where configs/ is


def parse_args(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument('--mode', choices=('backbone', 'config'), default='backbone')
    parser.add_argument('--models', help='comma-separated models timed as one group, '
                        'groups separated by ";" (default: the groups of --mode); '
                        f'backbone: {", ".join(benchmark.backbone_models())}; '
                        f'config: {", ".join(benchmark.CONFIGS)}')
    parser.add_argument('--baseline', help='ratios to this model (default: the '
                        'first of each group)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, help='default: 8 on CPU, 64 on CUDA '
                        '(config mode: 2; UperNet trains with BN, which needs 2)')
    parser.add_argument('--size', type=int,
                        help='square image side (default: 224 for backbones, '
                        '800x1333 Mask R-CNN, 512x512 UperNet); a small one '
                        '(--size 64 --batch 1) weighs the per-op host overhead, '
                        'which bounds a GPU step whose kernels have little work')
    parser.add_argument('--iters', type=int, default=1, help='steps per timing')
    parser.add_argument('--repeats', type=int, default=5, help='timings per model')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--precision', choices=('fp32', 'amp', 'both'),
                        help='amp: autocast to fp16 on CUDA, bf16 on CPU '
                        '(default: fp32 on CPU, both on CUDA)')
    parser.add_argument('--no-train', dest='train', action='store_false',
                        help='inference only')
    parser.add_argument('--no-memory', dest='memory', action='store_false',
                        help='skip the peak-memory step')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='print the N ops of each step that take most time')
    parser.add_argument('--breakdown', action='store_true',
                        help='print where the time of a step goes: ms per op '
                        'category (matmul & conv, attention, copies, norms, '
                        'elementwise), median of 3 profiled steps')
    parser.add_argument('--count-ops', action='store_true',
                        help='count the aten ops a step dispatches (their host '
                        'cost and kernel launches bound a GPU step with little '
                        'work per kernel)')
    parser.add_argument('--out', default='work_dirs/benchmark/result',
                        help='prefix of the .md, .json and .png outputs')
    args = parser.parse_args(argv)
    gpu = args.device.startswith('cuda')
    precision = args.precision or ('both' if gpu else 'fp32')
    args.precision = ['fp32', 'amp'] if precision == 'both' else [precision]
    if args.batch is None:
        args.batch = 2 if args.mode == 'config' else (64 if gpu else 8)
    args.root = ROOT
    return args


def markdown(rows, args) -> str:
    head = ['model', 'baseline', 'precision']
    for m in benchmark.timed_modes(args.train):
        head += [f'{m} img/s', f'{m} ratio'] + ([f'{m} peak MiB'] if args.memory else []) \
            + ([f'{m} ops'] if args.count_ops else [])
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        cells = [row['model'], row['baseline'], row['precision']]
        for m in benchmark.timed_modes(args.train):
            cells += [f'{row[f"{m}_img_s"]:.2f}', f'{row[f"{m}_ratio"]:.2f}']
            if args.memory:
                cells.append(f'{row[f"{m}_peak_mib"]:.0f}')
            if args.count_ops:
                cells.append(f'{row[f"{m}_ops"]:,}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(rows, args, path: str) -> None:
    from steps_lab.report import new_figure, save_figure
    timed = benchmark.timed_modes(args.train)
    fig, (ax,) = new_figure(width=0.9 * len(rows) + 2, height=4)
    width = 0.8 / len(timed)
    for i, m in enumerate(timed):
        ax.bar([j + width * i for j in range(len(rows))],
               [row[f'{m}_ratio'] for row in rows], width=width, label=m)
    ax.axhline(1, color='k', lw=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))],
                  [f"{row['model']} {row['precision']}" for row in rows],
                  rotation=30, ha='right')
    ax.set(ylabel='throughput / baseline', title=describe(args))
    ax.legend()
    save_figure(fig, osp.dirname(osp.abspath(path)), osp.basename(path))


def describe(args) -> str:
    device = torch.cuda.get_device_name() if args.device.startswith('cuda') \
        else f'cpu, {torch.get_num_threads()} threads'
    size = f', {args.size}x{args.size}' if args.size else (
        ', 224x224' if args.mode == 'backbone' else '')
    return (f'{args.mode} mode, {device}, batch {args.batch}{size}, '
            f'median of {args.repeats}')


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
    groups = [g.split(',') for g in args.models.split(';')] if args.models \
        else benchmark.default_groups(args.mode)
    try:
        for name in sum(groups, []):
            benchmark.check_name(name, args.mode)
    except ValueError as e:
        sys.exit(f'benchmark: {e}')
    print(describe(args), flush=True)
    start = time.time()

    def progress(message):
        print(f'  [{time.time() - start:6.0f} s] {message}', file=sys.stderr, flush=True)

    rows, breakdowns = [], []
    for names in groups:
        baseline = args.baseline if args.baseline in names else names[0]
        group_rows = benchmark.run_group(names, baseline, args, progress)
        rows += group_rows
        if args.breakdown:
            for precision in args.precision:
                same = [r for r in group_rows if r['precision'] == precision]
                breakdowns += [benchmark.breakdown_table(same, key)
                               for key in benchmark.timed_modes(args.train)]
    table = '\n\n'.join([markdown(rows, args)] + breakdowns)
    print(table)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out + '.md', 'w') as f:
        f.write(f'{describe(args)}\n\n{table}\n')
    with open(args.out + '.json', 'w') as f:
        json.dump(dict(setup=describe(args), torch=torch.__version__, rows=rows,
                       args=vars(args)), f, indent=1)
    plot(rows, args, args.out + '.png')
    print(f'wrote {args.out}.md, .json, .png', flush=True)


if __name__ == '__main__':
    main()
