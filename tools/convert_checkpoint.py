#!/usr/bin/env python
"""Convert a baseline checkpoint (official, timm, torchvision, mmpretrain, mmdet, mmseg
names) into a steps_mm checkpoint of the sequential layout, through the same checked
loader as ``init_cfg=dict(type='Pretrained', ...)``: it prints the load report and
fails on missing keys, unknown keys or shape mismatches.

    python tools/convert_checkpoint.py SRC DST --family convnext|swin|resnet|deit \\
        [--arch tiny] [--prefix backbone.] [--img-size 224] [--window-size 7]

DST holds ``state_dict`` with the ``backbone.*`` keys the source provided (keys it
lacks, such as output norms, stay absent) and ``meta.steps_mm`` describing the model.
"""
import argparse
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

FAMILIES = {'convnext': ('StepsConvNeXt', 'tiny'),
            'swin': ('StepsSwinTransformer', 'tiny'), 'resnet': ('StepsResNet', '50'),
            'deit': ('StepsViT', 'deit-small')}


def build_backbone(family: str, arch: str, img_size: int, window_size: int):
    from steps_mm.models import backbones
    name, _ = FAMILIES[family]
    cls = getattr(backbones, name)
    if family == 'resnet':
        return cls(depth=int(arch), layout='sequential')
    # one output norm (the last stage's), as the classifier checkpoints have
    extra = dict(img_size=img_size) if family == 'deit' else \
        dict(window_size=window_size, out_indices=-1) if family == 'swin' else \
        dict(out_indices=-1)
    return cls(arch=arch, layout='sequential', **extra)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--family', required=True, choices=sorted(FAMILIES))
    parser.add_argument('--arch', help='default: tiny (convnext, swin), 50 (resnet), '
                                       'deit-small (deit); or a JSON arch dict')
    parser.add_argument('--prefix', help="keys to take, e.g. 'backbone.' (default: "
                                         "'backbone.' when present, else all)")
    parser.add_argument('--img-size', type=int, default=224, help='deit only')
    parser.add_argument('--window-size', type=int, default=7, help='swin only')
    args = parser.parse_args(argv)

    import torch
    from mmengine.logging import MMLogger

    from steps_mm.models.pretrained import PretrainedError, load_pretrained
    MMLogger.get_instance('convert_checkpoint')  # print_log(logger='current') prints
    arch = args.arch or FAMILIES[args.family][1]
    arch = json.loads(arch) if arch.startswith('{') else arch
    model = build_backbone(args.family, arch, args.img_size, args.window_size)
    try:
        report = load_pretrained(model, args.src, args.prefix)
    except PretrainedError as e:
        sys.exit(f'convert_checkpoint: {e}')
    torch.save({'state_dict': {f'backbone.{k}': v.contiguous()
                               for k, v in report.loaded.items()},
                'meta': {'steps_mm': dict(backbone=FAMILIES[args.family][0], arch=arch,
                                          layout='sequential', source=args.src,
                                          source_layout=report.layout)}}, args.dst)
    print(f'wrote {args.dst}: {len(report.loaded)} backbone tensors')


if __name__ == '__main__':
    main()
