#!/usr/bin/env python
"""Convert a baseline checkpoint (official, timm, torchvision, mmpretrain, mmdet, mmseg
names) into a steps_mm checkpoint of the sequential layout, through the same checked
loader as ``init_cfg=dict(type='Pretrained', ...)``: it prints the load report and
fails on missing keys, unknown keys or shape mismatches. With ``--select-from-twin``
it writes a checkpoint of the Steps model instead, selected from the baseline's
(weight selection, as ``init_cfg=dict(type='SelectFromTwin', ...)``; see
``steps_mm.models.pretrained.selection``), and prints the selection report too.

    python tools/convert_checkpoint.py SRC DST --family convnext|swin|resnet|deit \\
        [--arch tiny] [--prefix backbone.] [--img-size 224] [--window-size 7] \\
        [--select-from-twin]

DST holds ``state_dict`` with the ``backbone.*`` keys the source provided (keys it
lacks, such as output norms, stay absent; with ``--select-from-twin``, the Steps
tensors selected from it) and ``meta.steps_mm`` describing the model. Either loads
with ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` into the model of its
layout. The families and their archs are those of the backbone classes
(``steps_mm.models.FAMILIES``).
"""
import argparse
import inspect
import sys

import torch
from mmengine.logging import MMLogger

from steps_mm.models import FAMILIES
from steps_mm.models.pretrained import PretrainedError, load_pretrained
from steps_mm.models.pretrained.selection import selected_backbone


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--family', required=True, choices=sorted(FAMILIES))
    parser.add_argument('--arch', help='an arch name of the family (default: its '
                        'backbone\'s default: ' + ', '.join(
                            f'{f} {cls.default_arch()}' for f, cls in
                            sorted(FAMILIES.items())) + '), or a JSON arch dict')
    parser.add_argument('--prefix', help="keys to take, e.g. 'backbone.' (default: "
                                         "'backbone.' when present, else all)")
    parser.add_argument('--img-size', type=int,
                        help='image size the backbone is built for (ViT; default 224)')
    parser.add_argument('--window-size', type=int,
                        help='the attention window (Swin; default 7)')
    parser.add_argument('--select-from-twin', action='store_true',
                        help='SRC is a checkpoint of the baseline (the twin); write '
                             'the Steps model of the same arch, initialised by '
                             'selecting from it')
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    cls = FAMILIES[args.family]
    takes = inspect.signature(cls).parameters
    options = {}
    for name in ('img_size', 'window_size'):
        value = getattr(args, name)
        if value is not None:
            if name not in takes:
                parser.error(f'--{name.replace("_", "-")} does not apply to '
                             f'{cls.__name__} (family {args.family})')
            options[name] = value
    arch = cls.arch_from_text(args.arch) if args.arch else cls.default_arch()
    MMLogger.get_instance('convert_checkpoint')  # print_log(logger='current') prints
    try:
        if args.select_from_twin:
            _, selection = selected_backbone(cls, arch, args.src, args.prefix,
                                             **options)
            report, state, layout = selection.load, selection.state, 'steps'
        else:
            report = load_pretrained(cls.for_checkpoint(arch, **options), args.src,
                                     args.prefix)
            state, layout = report.loaded, 'sequential'
    except PretrainedError as e:
        sys.exit(f'convert_checkpoint: {e}')
    meta = dict(backbone=cls.__name__, arch=arch, layout=layout, source=args.src,
                source_key_scheme=report.key_scheme)
    if args.select_from_twin:
        meta['selected_from'] = selection.twin
    torch.save({'state_dict': {f'backbone.{k}': v.contiguous()
                               for k, v in state.items()},
                'meta': {'steps_mm': meta}}, args.dst)
    print(f'wrote {args.dst}: {len(state)} backbone tensors')


if __name__ == '__main__':
    main()
