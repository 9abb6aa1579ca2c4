#!/usr/bin/env python
"""Table 1 of the StepsNet paper next to our models: parameters, FLOPs (MACs at
224x224, 1000-class head), residual blocks and layers, with the deltas, as Markdown.

    python tools/fidelity_table.py [--out fidelity.md] [--only Swin]

Tolerances (issue 3): params within 0.1M, FLOPs within 0.1G, blocks and layers exact.
ConvNeXt rows have no paper numbers (Steps-ConvNeXt is our choice, spec section 1).
"""
import argparse
import sys
import time

import os.path as osp
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from steps_mm.analysis import count_blocks_and_layers, count_flops, count_params  # noqa
from steps_mm.models import StepsImageClassifier  # noqa

R, V, S, C = 'StepsResNet', 'StepsViT', 'StepsSwinTransformer', 'StepsConvNeXt'
# name, backbone config, paper: params (M), FLOPs (G), blocks, layers
ROWS = [
    ('ResNet-18', dict(type=R, depth=18, layout='sequential'), 11.7, 1.8, 8, 18),
    ('Steps-ResNet-18', dict(type=R, depth=18), 11.7, 1.8, 18, 38),
    ('ResNet-34', dict(type=R, depth=34, layout='sequential'), 21.8, 3.7, 16, 34),
    ('Steps-ResNet-34', dict(type=R, depth=34), 21.8, 3.7, 34, 70),
    ('ResNet-50', dict(type=R, depth=50, layout='sequential'), 25.6, 4.1, 16, 50),
    ('Steps-ResNet-50', dict(type=R, depth=50), 25.6, 4.1, 34, 104),
    ('DeiT-T', dict(type=V, arch='deit-tiny', layout='sequential'), 5.7, 1.3, 12, 62),
    ('Steps-DeiT-T', dict(type=V, arch='deit-tiny'), 5.7, 1.3, 24, 122),
    ('DeiT-S', dict(type=V, arch='deit-small', layout='sequential'), 22.1, 4.6, 12, 62),
    ('Steps-DeiT-S', dict(type=V, arch='deit-small'), 22.1, 4.7, 24, 122),
    ('DeiT-B', dict(type=V, arch='deit-base', layout='sequential'), 86.6, 17.6, 12, 62),
    ('Steps-DeiT-B', dict(type=V, arch='deit-base'), 86.7, 17.9, 24, 122),
    ('Swin-T', dict(type=S, arch='tiny', layout='sequential'), 28.3, 4.5, 12, 65),
    ('Steps-Swin-T', dict(type=S, arch='tiny'), 27.8, 4.5, 26, 135),
    ('Swin-S', dict(type=S, arch='small', layout='sequential'), 49.6, 8.8, 24, 125),
    ('Steps-Swin-S', dict(type=S, arch='small'), 49.1, 8.8, 38, 195),
    ('Swin-B', dict(type=S, arch='base', layout='sequential'), 87.8, 15.5, 24, 125),
    ('Steps-Swin-B', dict(type=S, arch='base'), 86.7, 15.5, 38, 195),
    ('ConvNeXt-T', dict(type=C, arch='tiny', layout='sequential'), None, None, None, None),
    ('Steps-ConvNeXt-T', dict(type=C, arch='tiny'), None, None, None, None),
    ('ConvNeXt-S', dict(type=C, arch='small', layout='sequential'), None, None, None, None),
    ('Steps-ConvNeXt-S', dict(type=C, arch='small'), None, None, None, None),
    ('ConvNeXt-B', dict(type=C, arch='base', layout='sequential'), None, None, None, None),
    ('Steps-ConvNeXt-B', dict(type=C, arch='base'), None, None, None, None),
]
PARAM_TOL, FLOP_TOL = 0.1, 0.1


def measure(backbone: dict) -> dict:
    model = StepsImageClassifier(backbone, num_classes=1000)
    blocks, layers = count_blocks_and_layers(model)
    return dict(params=count_params(model) / 1e6, flops=count_flops(model) / 1e9,
                blocks=blocks, layers=layers)


def row(name, ours, params, flops, blocks, layers):
    def cell(value, paper, fmt, tol):
        if paper is None:
            return f'{value:{fmt}}', '—', '—'
        delta = value - paper
        ok = abs(delta) <= tol + 1e-9
        return f'{value:{fmt}}', f'{paper:{fmt}}', f"{delta:+{fmt}}{'' if ok else ' ✗'}"
    cells = [cell(ours['params'], params, '.2f', PARAM_TOL),
             cell(ours['flops'], flops, '.2f', FLOP_TOL),
             cell(ours['blocks'], blocks, 'd', 0), cell(ours['layers'], layers, 'd', 0)]
    ok = all('✗' not in c[2] for c in cells)
    return '| ' + ' | '.join([name] + [x for c in cells for x in c]
                             + ['✓' if ok else '✗']) + ' |', ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', help='also write the Markdown table to this file')
    parser.add_argument('--only', help='rows whose name contains this text')
    args = parser.parse_args()
    lines = ['| model | params (M) | paper | Δ | FLOPs (G) | paper | Δ | blocks | paper '
             '| Δ | layers | paper | Δ | within tolerance |',
             '|---' * 14 + '|']
    failures = 0
    rows = [r for r in ROWS if not args.only or args.only in r[0]]
    for i, (name, backbone, *paper) in enumerate(rows, 1):
        start = time.time()
        text, ok = row(name, measure(backbone), *paper)
        failures += not ok
        lines.append(text)
        print(f'[{i}/{len(rows)}] {name} ({time.time() - start:.1f}s)', file=sys.stderr,
              flush=True)
    table = '\n'.join(lines)
    print(table)
    print(f'\n{len(rows) - failures}/{len(rows)} rows within tolerance '
          f'(params ±{PARAM_TOL}M, FLOPs ±{FLOP_TOL}G, blocks and layers exact).')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
