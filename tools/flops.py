#!/usr/bin/env python
"""FLOPs (multiply-accumulates, attention matmuls included) and parameters of a
shipped config by the papers' protocol, with a breakdown by backbone / neck /
heads and by stage and step of the backbone. No dataset is needed.

    python tools/flops.py CONFIG [--shape H W] [--backbone] [--out DIR]
    python tools/flops.py --all [--shape H W] [--backbone] [--out DIR]
    python tools/flops.py --write-metafile [--recompute]

Defaults: COCO models at 1280x800 (Mask R-CNN and Cascade Mask R-CNN with 1000
proposals and 100 masks, DINO and Mask2Former up to their heads' outputs), UperNet
at 512x2048 without the auxiliary head, Mask2Former on ADE20K at its 512x512 crop,
classifiers at 224x224 (docs/models.md, the FLOP protocol). --backbone counts
the paper's Table-1 model instead: the config's backbone with a 1000-class head
at 224x224. An operator that does arithmetic but has no counter is an error.
--write-metafile regenerates the model-zoo metafile (after adding or removing a
config), whose table ``tools/model_table.py`` prints. DINO selects its 900
queries among its encoder's tokens, so it needs an input of about 224x224 or
more: smaller, a config is refused with the size it needs (--all lists it under
the table and counts the rest).
"""
import contextlib
import os.path as osp
import sys
import time

from steps_mm.analysis import count_config, model_index, shipped_configs
from steps_mm.analysis.flops import InputTooSmall, breakdown_table
from steps_lab.report import Progress, markdown_table, tool_parser, write_json

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))  # where configs/ is


def parse_args(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument('config', nargs='?', help='a config file')
    parser.add_argument('--all', action='store_true',
                        help='every config under configs/ whose codebase is installed')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: the papers\' shape)')
    parser.add_argument('--backbone', action='store_true',
                        help='Table-1 mode: backbone + 1000-class head at 224x224')
    parser.add_argument('--out', help='write flops.json here')
    parser.add_argument('--write-metafile', action='store_true',
                        help='regenerate steps_mm/.mim/metafile.yml and model-index.yml')
    parser.add_argument('--recompute', action='store_true',
                        help='with --write-metafile: count every config again')
    args = parser.parse_args(argv)
    if sum([bool(args.config), args.all, args.write_metafile]) != 1:
        parser.error('give exactly one of CONFIG, --all or --write-metafile')
    return args


def summary_row(result):
    h, w = result['shape']
    bb = result['backbone']
    return [f"`{osp.relpath(result['config'], ROOT)}`", f"{bb['type']} {bb['arch']}",
            bb['layout'], f'{h}x{w}', f"{result['flops'] / 1e9:.1f}",
            f"{result['params'] / 1e6:.1f}"]


def main(argv=None):
    args = parse_args(argv)
    # mmengine logs to stdout: keep stdout for the tables
    with contextlib.redirect_stdout(sys.stderr):
        table = run(args)
    print(table)


def run(args) -> str:
    """Count what ``args`` asks for; returns the Markdown table."""
    if args.write_metafile:
        progress = Progress(len(shipped_configs(ROOT)[0]))
        done = model_index.regenerate(ROOT, args.recompute,
                                      on_config=lambda name, what: progress.step(
                                          f'{name}: {what}'))
        print(f"wrote {osp.relpath(model_index.METAFILE, ROOT)}: "
              f"{len(done['counted'])} counted, {len(done['kept'])} kept, removed {done['removed'] or 'none'}, "
              f"skipped (codebase not installed) {done['skipped'] or 'none'}")
        return model_index.table(model_index.read_entries())
    shape = tuple(args.shape) if args.shape else None
    if args.config:
        start = time.time()
        try:
            result = count_config(args.config, shape, args.backbone)
        except InputTooSmall as error:
            raise SystemExit(f'{args.config}: {error}')
        table = breakdown_table(result)
        print(f'{result["flops"] / 1e9:.2f} GMACs, {result["params"] / 1e6:.2f}M '
              f'parameters ({time.time() - start:.0f}s)')
        results = [result]
    else:
        configs, skipped = shipped_configs(ROOT)
        if skipped:
            print(f'skipped (codebase not installed): {skipped}')
        progress, results, too_small = Progress(len(configs)), [], []
        for config in configs:
            try:
                results.append(count_config(config, shape, args.backbone))
            except InputTooSmall as error:
                too_small.append(f'{osp.basename(config)}: {error}')
                progress.step(f'{osp.basename(config)}: not counted at this input')
                continue
            progress.step(f'{osp.basename(config)}: '
                          f"{results[-1]['flops'] / 1e9:.1f} GMACs")
        table = markdown_table(['config', 'backbone', 'layout', 'input', 'GMACs',
                                'params (M)'], map(summary_row, results))
        if too_small:
            table += '\n\nnot counted (input too small for the head):\n' + \
                '\n'.join(f'- {line}' for line in too_small)
    path = write_json(args.out, 'flops.json', results)
    if path:
        print(f'wrote {path}')
    return table


if __name__ == '__main__':
    main()
