#!/usr/bin/env python
"""Throughput of each Steps model as a ratio to its residual baseline, measured in
the same process on the same device (ImageNet classifier, 224x224).

    python tools/benchmark_speed.py [--device cuda] [--amp] [--batch 64]
        [--models Swin-T,Steps-Swin-T] [--plot speed.png]

Prints images/s for inference and for a training step (forward + backward) and the
Steps/baseline ratio, and plots the ratios.
"""
import argparse
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from steps_mm.models import StepsImageClassifier  # noqa: E402

C, S, R, V = 'StepsConvNeXt', 'StepsSwinTransformer', 'StepsResNet', 'StepsViT'
PAIRS = {  # name: backbone config; the baseline is the same with layout='sequential'
    'ConvNeXt-T': dict(type=C, arch='tiny'), 'Swin-T': dict(type=S, arch='tiny'),
    'Swin-S': dict(type=S, arch='small'), 'ResNet-50': dict(type=R, depth=50),
    'DeiT-S': dict(type=V, arch='deit-small'),
}


def throughput(model, images, train: bool, amp: bool, iters: int) -> float:
    device_type = images.device.type
    autocast = torch.autocast(device_type, dtype=torch.float16 if device_type == 'cuda'
                              else torch.bfloat16, enabled=amp)

    def step():
        with autocast, torch.set_grad_enabled(train):
            out = model(images)
        if train:
            out.float().mean().backward()

    model.train(train)
    for _ in range(3):  # warm-up
        step()
    if device_type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device_type == 'cuda':
        torch.cuda.synchronize()
    return iters * images.shape[0] / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=None, help='64 on GPU, 8 on CPU')
    parser.add_argument('--iters', type=int, default=None, help='20 on GPU, 3 on CPU')
    parser.add_argument('--amp', action='store_true', help='fp16 autocast (bf16 on CPU)')
    parser.add_argument('--models', default=','.join(PAIRS))
    parser.add_argument('--plot', help='write a bar chart of the ratios to this PNG')
    args = parser.parse_args()
    gpu = args.device.startswith('cuda')
    batch, iters = args.batch or (64 if gpu else 8), args.iters or (20 if gpu else 3)
    images = torch.randn(batch, 3, 224, 224, device=args.device)
    if gpu:
        torch.backends.cudnn.benchmark = True
    print(f'device {args.device} ({torch.cuda.get_device_name() if gpu else "cpu"}), '
          f'batch {batch}, {iters} timed iterations, amp {args.amp}')
    print('| model | mode | baseline img/s | Steps img/s | Steps / baseline |\n'
          '|---|---|---|---|---|')
    ratios = {}
    for name in args.models.split(','):
        models = {layout: StepsImageClassifier(dict(PAIRS[name], layout=layout))
                  .to(args.device) for layout in ('sequential', 'steps')}
        for mode, train in (('inference', False), ('train', True)):
            base, steps = (throughput(models[k], images, train, args.amp, iters)
                           for k in ('sequential', 'steps'))
            ratios[name, mode] = steps / base
            print(f'| {name} | {mode} | {base:.1f} | {steps:.1f} | {steps / base:.2f} |',
                  flush=True)
        del models
    if args.plot:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        names = args.models.split(',')
        fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 3.5))
        for i, mode in enumerate(('inference', 'train')):
            ax.bar([j + 0.4 * i for j in range(len(names))],
                   [ratios[n, mode] for n in names], width=0.4, label=mode)
        ax.axhline(1, color='k', lw=0.8)
        ax.set_xticks([j + 0.2 for j in range(len(names))], names)
        ax.set(ylabel='Steps / baseline throughput',
               title=f'{args.device}, batch {batch}, amp {args.amp}')
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f'plot: {args.plot}')


if __name__ == '__main__':
    main()
