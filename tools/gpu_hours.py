#!/usr/bin/env python
"""Device-hours of an ImageNet-1K pretraining run, from the recipe's schedule and a
measured training throughput.

    python tools/gpu_hours.py configs/imagenet/steps-convnext-tiny_32xb128_in1k.py \
        [configs/imagenet/convnext-tiny_32xb128_in1k.py ...] [--device cuda] [--amp]
        [--batch 128] [--steps 10] [--warmup 3] [--out DIR]

Each config's model is built through mmpretrain's registry with the recipe's
optimizer, and full training steps (``model.train_step``: data preprocessing with
the recipe's Mixup/CutMix, forward, backward, optimizer step) are timed on
synthetic 224x224 batches of the recipe's per-device batch size (``--batch``
overrides it, e.g. on a CPU). The configs are interleaved (A B A B ...) and the
median step is taken after warm-up. Device-hours = epochs x 1,281,167 images /
(images per second) / 3600, for one device; divide by the devices of a run for its
wall time. Prints a Markdown table; ``--out`` also writes gpu_hours.json.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
IMAGENET_TRAIN_IMAGES = 1_281_167


def build(config: str, device: str, amp: bool, batch: int):
    """-> (model, optimizer wrapper, a synthetic batch, epochs, batch size)."""
    import steps_mm.pretraining  # noqa: F401  (first: mmpretrain with our modules)
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = batch or cfg.train_dataloader.batch_size
    classes = cfg.model.head.num_classes
    data = dict(inputs=[torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8)
                        for _ in range(batch)],
                data_samples=[DataSample().set_gt_label(i % classes)
                              for i in range(batch)])
    return model, optim_wrapper, data, cfg.train_cfg.max_epochs, batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='+', help='ImageNet configs (mmpretrain)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', action='store_true', help='AmpOptimWrapper (fp16)')
    parser.add_argument('--batch', type=int, help="per-device batch (default: the recipe's)")
    parser.add_argument('--steps', type=int, default=10, help='timed steps per config')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--out', help='directory for gpu_hours.json')
    args = parser.parse_args()
    if args.amp and args.device == 'cpu':
        parser.error('--amp needs a CUDA device (AmpOptimWrapper refuses the CPU)')

    runs = {}
    for config in args.configs:
        print(f'[gpu_hours] building {osp.basename(config)}', file=sys.stderr, flush=True)
        runs[config] = build(config, args.device, args.amp, args.batch)
    times = {config: [] for config in runs}
    for step in range(args.warmup + args.steps):
        for config, (model, optim_wrapper, data, _, _) in runs.items():
            if args.device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.train_step(data, optim_wrapper)
            if args.device == 'cuda':
                torch.cuda.synchronize()
            if step >= args.warmup:
                times[config].append(time.perf_counter() - start)
        print(f'[gpu_hours] step {step + 1}/{args.warmup + args.steps}'
              f'{" (warm-up)" if step < args.warmup else ""}', file=sys.stderr,
              flush=True)

    device = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    rows = []
    print(f'| config | batch | images/s ({device}{", AMP" if args.amp else ""}) | '
          f'epochs | device-hours |\n|---|---|---|---|---|')
    for config, (_, _, _, epochs, batch) in runs.items():
        per_second = batch / statistics.median(times[config])
        hours = epochs * IMAGENET_TRAIN_IMAGES / per_second / 3600
        rows.append(dict(config=osp.relpath(config, ROOT), batch=batch, device=device,
                         amp=args.amp, images_per_second=per_second, epochs=epochs,
                         device_hours=hours))
        print(f'| {osp.basename(config)} | {batch} | {per_second:.1f} | {epochs} | '
              f'{hours:,.0f} |')
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'gpu_hours.json'), 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
