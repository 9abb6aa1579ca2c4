#!/usr/bin/env python
"""Check that the export paths reproduce the backbones: the ONNX exporters
(TorchScript-based dynamo=False, and dynamo=True; run by onnxruntime),
torch.export and torch.fx, against eager PyTorch, per model, layout and input size.

    python tools/check_export.py [--models ConvNeXt-T Swin-T ResNet-50 DeiT-S]
        [--layouts steps sequential] [--sizes 224x224 512x640]
        [--paths onnx-legacy onnx-dynamo torch.export fx] [--tol 1e-4] [--out DIR]

``--models`` are baselines as ``steps_mm.models.named_backbones()`` names them
(default: each family's default arch), each built in every ``--layouts`` with
its family's ``several_outputs``. Each run is one row (``Steps-Swin-T`` in the
steps layout), printed as it finishes (max |exported - eager| over all the
backbone's outputs, random weights and input); a Markdown table follows, also
written to DIR/export_check.md with export_check.json. Exits 1 when a difference
exceeds --tol. The defaults (64 exports) took about 40 minutes on a loaded 2-core
machine.
"""
import json
import os
import os.path as osp
import sys


def baselines() -> dict:
    """Every family's baseline model names (``ConvNeXt-T``) -> (backbone class,
    arch)."""
    from steps_mm.models import BACKBONES
    return {cls.model_name(arch): (cls, arch) for cls in BACKBONES
            for arch in cls.arch_names}


def parse_args():
    from steps_mm.export import PATHS
    from steps_mm.models import BACKBONES
    from steps_lab.report import tool_parser
    parser = tool_parser(__doc__)
    parser.add_argument('--models', nargs='+', choices=list(baselines()),
                        default=[cls.model_name(cls.default_arch()) for cls in BACKBONES])
    parser.add_argument('--layouts', nargs='+', default=['steps', 'sequential'])
    parser.add_argument('--sizes', nargs='+', default=['224x224', '512x640'],
                        help='HxW input sizes')
    parser.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS))
    parser.add_argument('--tol', type=float, default=1e-4)
    parser.add_argument('--out', help='write export_check.md and .json here')
    return parser.parse_args()


def main():
    args = parse_args()
    import torch

    from steps_mm.export import export_errors
    from steps_lab.report import markdown_table
    models = baselines()
    rows = []
    for size in args.sizes:
        h, w = map(int, size.split('x'))
        for baseline in args.models:
            for layout in args.layouts:
                torch.manual_seed(0)
                cls, arch = models[baseline]
                model = cls(**{cls.arch_arg: arch}, layout=layout, **cls.several_outputs)
                name = cls.model_name(arch, layout)
                x = torch.randn(1, 3, h, w)

                def progress(path, error, seconds):
                    print(f'{name:16s} {layout:10s} {size:8s} {path:13s} '
                          f'{error:.2e}  ({seconds:.0f} s)', file=sys.stderr, flush=True)

                errors = export_errors(model, x, args.paths, progress)
                rows.append(dict(model=name, layout=layout, size=size,
                                 errors={p: e for p, (e, _) in errors.items()}))
    table = markdown_table(
        ['model', 'layout', 'input', *args.paths],
        [[r['model'], r['layout'], f'1x3x{r["size"]}',
          *(f'{r["errors"][p]:.1e}' for p in args.paths)] for r in rows])
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'export_check.md'), 'w') as f:
            f.write(table + '\n')
        with open(osp.join(args.out, 'export_check.json'), 'w') as f:
            json.dump(dict(tol=args.tol, rows=rows), f, indent=1)
    worst = max(e for r in rows for e in r['errors'].values())
    if worst > args.tol:
        print(f'max difference {worst:.2e} exceeds --tol {args.tol}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
