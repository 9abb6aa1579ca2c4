#!/usr/bin/env python
"""Device-hours of a training run, from the recipe's schedule and a measured
training throughput: ImageNet-1K pretraining and the det/seg recipes.

    python tools/gpu_hours.py configs/imagenet/steps-convnext-tiny_32xb128_in1k.py \
        [configs/imagenet/convnext-tiny_32xb128_in1k.py ...] [--device cuda] [--amp]
        [--batch 128] [--shape H W] [--steps 10] [--warmup 3] [--out DIR]

Each config's model is built as mmengine's Runner builds it (randomly initialised),
with the recipe's optimizer, and full training steps (``model.train_step``: data
preprocessing with the recipe's batch augments, forward, backward, optimizer step)
are timed on synthetic batches of the recipe's per-device batch size (``--batch``
overrides it, e.g. on a CPU): 224x224 images for ImageNet; for COCO the recipe's
fixed training size (LSJ) or else 1333x800 (the largest image of the multi-scale
recipes) with 8 boxes and masks per image; for ADE20K the crop with a label map
(``--shape`` overrides the size). The configs are interleaved (A B A B ...) and the
median step is taken after warm-up. Device-hours = the images the schedule
processes (epochs x ImageNet-1K's 1,281,167 or COCO train2017's 117,266 annotated
images, or iterations x the recipe's global batch) / (images per second) / 3600,
for one device; divide by the devices of a run for its wall time. Prints a
Markdown table; ``--out`` also writes gpu_hours.json.
"""
import os.path as osp
import sys

import torch

from steps_mm.analysis import gpu_hours, timing
from steps_lab.report import markdown_table, tool_parser, write_json

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument('configs', nargs='+', help='ImageNet, COCO or ADE20K configs')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', action='store_true', help='AmpOptimWrapper (fp16)')
    parser.add_argument('--batch', type=int, help="per-device batch (default: the recipe's)")
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="image size (default: the recipe's training size)")
    parser.add_argument('--steps', type=int, default=10, help='timed steps per config')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--out', help='directory for gpu_hours.json')
    args = parser.parse_args(argv)
    if args.amp and not args.device.startswith('cuda'):
        parser.error('--amp needs a CUDA device (AmpOptimWrapper refuses the CPU)')
    return args


def main(argv=None):
    args = parse_args(argv)

    def progress(message):
        print(f'[gpu_hours] {message}', file=sys.stderr, flush=True)

    runs = {}
    for config in args.configs:
        progress(f'building {osp.basename(config)}')
        runs[config] = gpu_hours.training_run(config, args.device, args.amp, args.batch,
                                              args.shape)
    medians = timing.interleaved_medians(
        {config: run.step for config, run in runs.items()}, args.steps, args.warmup,
        device=args.device, progress=progress)

    device = torch.cuda.get_device_name() if args.device.startswith('cuda') else \
        f'CPU, {torch.get_num_threads()} threads'
    rows = []
    for config, run in runs.items():
        per_second = run.batch / medians[config]
        shape = list(run.data['inputs'][0].shape[1:])
        rows.append(dict(config=osp.relpath(config, ROOT), batch=run.batch, shape=shape,
                         device=device, amp=args.amp, images_per_second=per_second,
                         schedule=run.schedule, images=run.images,
                         device_hours=gpu_hours.device_hours(run.images, per_second)))
    print(markdown_table(
        ['config', 'batch', 'HxW', f'images/s ({device}{", AMP" if args.amp else ""})',
         'schedule', 'device-hours'],
        [[osp.basename(r['config']), r['batch'], '{}x{}'.format(*r['shape']),
          f"{r['images_per_second']:.1f}", r['schedule'], f"{r['device_hours']:,.0f}"]
         for r in rows]))
    write_json(args.out, 'gpu_hours.json', rows)


if __name__ == '__main__':
    main()
