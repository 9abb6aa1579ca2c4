#!/usr/bin/env python
"""The paper's comparison tables from finished runs: each Steps run beside its
baseline twin (params, FLOPs, top-1 / AP^box / AP^mask / mIoU, inference img/s,
delta), every figure traced to its file and checkpoint.

    python tools/results_table.py WORK_DIR... [--out DIR] [--input-size SCOPE=HxW ...]
        [--no-flops] [--write-metafile [PATH]]

Each WORK_DIR is a run: the --work-dir of its `mim train` and `mim test` (the stock
tools' default, work_dirs/<config>/), or a dir holding both one level down. Runs are
paired by config: twins build the same model with layout='steps' and
layout='sequential'; a pair that was not trained like for like (schedule, optimizer,
data, seed, initialisation) is flagged. Several pairs of the same twins and recipe
with other seeds are one comparison, shown as mean ± std. FLOPs are counted by
tools/flops.py's protocol at the paper's input size (Mask R-CNN 800x1280, UperNet
512x2048, classifiers 224x224) unless --input-size says otherwise.
--out DIR writes results.md, results.csv (one figure per line with its source file
and checkpoint) and results.json. --write-metafile puts the metrics into the
package's model index (steps_mm/.mim/metafile.yml; paper datasets only) or into the
metafile at PATH. Exits 1, naming each dir and what it lacks, when a work dir holds
no test result. Where the tests dumped their per-image predictions (`mim test ...
--out`, see steps_lab/results/intervals.py), each comparison also gets the 95%
interval of its Steps-minus-twin delta and a verdict: ahead, behind, within noise.
"""
import contextlib
import re
import sys

from steps_lab.report import tool_parser


def input_size(text: str):
    match = re.fullmatch(r'(mmpretrain|mmdet|mmseg)=(\d+)x(\d+)', text)
    if not match:
        raise ValueError(text)
    return match.group(1), (int(match.group(2)), int(match.group(3)))


def main():
    parser = tool_parser(__doc__)
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    parser.add_argument('--out', help='write results.md, results.csv, results.json here')
    parser.add_argument('--input-size', type=input_size, action='append', default=[],
                        metavar='SCOPE=HxW', help='FLOPs input size, e.g. mmdet=800x1280')
    parser.add_argument('--no-flops', action='store_true', help='skip params and FLOPs')
    parser.add_argument('--write-metafile', nargs='?', const='package', metavar='PATH',
                        help="write the metrics into the package's model index or PATH")
    args = parser.parse_args()

    from steps_lab import results
    from steps_lab.results import intervals
    from steps_lab.results.metafile import write_results
    try:
        runs = results.read_runs(args.work_dirs)
        shapes = dict(args.input_size)
        counter = None if args.no_flops else results.FlopCounter(shapes)
        # mmengine logs while building models: keep stdout for the tables
        with contextlib.redirect_stdout(sys.stderr):
            tables = intervals.attach(results.build_tables(runs, counter))
        shown = {scope: counter.shape(scope) for scope in ('mmpretrain', 'mmdet', 'mmseg')} \
            if counter else None
        print(results.markdown(tables, shown))
        if args.out:
            paths = results.write(tables, args.out, shown)
            print('wrote ' + ', '.join(paths.values()), file=sys.stderr)
        if args.write_metafile:
            kwargs = {} if args.write_metafile == 'package' else \
                dict(path=args.write_metafile)
            names = write_results(tables, **kwargs)
            print(f'model index: results of {", ".join(names) or "no entry"} written',
                  file=sys.stderr)
    except results.ResultsError as error:
        sys.exit(f'results_table: {error}')


if __name__ == '__main__':
    main()
