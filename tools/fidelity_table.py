#!/usr/bin/env python
"""Table 1 of the StepsNet paper next to our models: parameters, FLOPs (MACs at
224x224, 1000-class head), residual blocks and layers, with the deltas, as Markdown.
Exits with status 1 when a row is out of tolerance.

    python tools/fidelity_table.py [--out fidelity.md] [--only Swin]

Tolerances: params within 0.1M, FLOPs within 0.1G, blocks and layers exact
(``steps_lab.paper.TABLE1_TOLERANCE``); a cell outside them on purpose is marked
and explained under the table (``steps_lab.paper.TABLE1_EXPLAINED``). ConvNeXt rows
have no paper numbers (Steps-ConvNeXt is the spec's own choice).
"""
import sys

from steps_lab import fidelity
from steps_lab.paper import TABLE1_TOLERANCE
from steps_lab.report import Progress, tool_parser


def parse_args(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument('--out', help='also write the Markdown table to this file')
    parser.add_argument('--only', help='rows whose name contains this text')
    parser.add_argument('--params-tol', type=float, default=TABLE1_TOLERANCE['params'],
                        help='tolerance on parameters, M (default: %(default)s)')
    parser.add_argument('--flops-tol', type=float, default=TABLE1_TOLERANCE['flops'],
                        help='tolerance on FLOPs, G (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    models = fidelity.table1_models(args.only)
    if not models:
        sys.exit(f'fidelity_table: no model name contains {args.only!r}')
    tolerance = dict(params=args.params_tol, flops=args.flops_tol)
    progress, rows = Progress(len(models)), []
    for name, backbone in models:
        rows.append((name, fidelity.compare(name, fidelity.measure(backbone),
                                            tolerance=tolerance)))
        progress.step(name)
    table = fidelity.markdown(rows)
    failed = [name for name, cells in rows if not fidelity.within(cells)]
    print(table)
    print(f'\n{len(rows) - len(failed)}/{len(rows)} rows within tolerance (params '
          f'±{args.params_tol}M, FLOPs ±{args.flops_tol}G, blocks and layers exact)'
          + (f'; out of tolerance: {", ".join(failed)}' if failed else '') + '.')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
