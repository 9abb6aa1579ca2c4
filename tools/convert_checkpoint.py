#!/usr/bin/env python
"""Convert a baseline checkpoint (official, timm, torchvision, mmpretrain, mmdet, mmseg
names) into a steps_mm checkpoint of the sequential layout, through the same checked
loader as ``init_cfg=dict(type='Pretrained', ...)``: it prints the load report and
fails on missing keys, unknown keys or shape mismatches.

    python tools/convert_checkpoint.py SRC DST --family convnext|swin|resnet|deit \\
        [--arch tiny] [--prefix backbone.] [--img-size 224] [--window-size 7]

DST holds ``state_dict`` with the ``backbone.*`` keys the source provided (keys it
lacks, such as output norms, stay absent) and ``meta.steps_mm`` describing the model.
The families and their archs are those of the backbone classes
(``steps_mm.models.FAMILIES``).
"""
import argparse
import inspect
import sys

import torch
from mmengine.logging import MMLogger

from steps_mm.models import FAMILIES
from steps_mm.models.pretrained import PretrainedError, load_pretrained


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
    model = cls.for_checkpoint(arch, **options)
    try:
        report = load_pretrained(model, args.src, args.prefix)
    except PretrainedError as e:
        sys.exit(f'convert_checkpoint: {e}')
    torch.save({'state_dict': {f'backbone.{k}': v.contiguous()
                               for k, v in report.loaded.items()},
                'meta': {'steps_mm': dict(backbone=cls.__name__, arch=arch,
                                          layout='sequential', source=args.src,
                                          source_layout=report.layout)}}, args.dst)
    print(f'wrote {args.dst}: {len(report.loaded)} backbone tensors')


if __name__ == '__main__':
    main()
