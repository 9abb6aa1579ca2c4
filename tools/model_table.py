#!/usr/bin/env python
"""The model table: every shipped config with its backbone, layout, input size, the
whole model's FLOPs (multiply-accumulates) and parameters by the papers' protocol,
and its backbone's as the paper's Table 1 counts them (1000-class head, 224x224), as
Markdown. Read from the model-zoo metafile, the one source of these numbers
(``python tools/flops.py --write-metafile`` regenerates it after a config changes).

    python tools/model_table.py [--out models.md]
"""
from steps_lab.report import tool_parser
from steps_mm.analysis import model_index


def main(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args(argv)
    entries = model_index.read_entries()
    if not entries:
        parser.exit(1, f'model_table: no entries in {model_index.METAFILE}; run '
                       f'python tools/flops.py --write-metafile\n')
    table = model_index.table(entries)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
