"""The research tools' command line: the options every study tool shares, the
parsers of list options, the user's options applied to a study's config, and
the output (the report on stdout, the files written on stderr)."""
import argparse
import dataclasses
import os.path as osp
import sys
from typing import Dict, Optional, Sequence, Tuple

from ..report import tool_parser

LAYOUTS = ('sequential', 'steps', 'parallel')


def study_parser(doc: str, jobs: bool = True) -> argparse.ArgumentParser:
    """A parser with ``--quick``, ``--out`` and ``--quiet``, and, for a study
    of several jobs (``jobs``), ``--workers`` and ``--cache``; the tool adds
    its own options."""
    parser = tool_parser(doc)
    parser.add_argument('--quick', action='store_true',
                        help='a tiny run (seconds; the tests run it)')
    if jobs:
        parser.add_argument('--workers', type=int, default=2,
                            help='training processes, one thread each (default 2)')
        parser.add_argument('--cache', metavar='DIR',
                            help="keep each trained model's result in DIR; run again "
                                 'with the same DIR to continue an interrupted study')
    parser.add_argument('--out', metavar='DIR',
                        help='write the JSON files (and plots) here')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    return parser


def int_list(text: str) -> Tuple[int, ...]:
    """``'0,1,2'`` -> ``(0, 1, 2)`` (an argparse type)."""
    try:
        return tuple(int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated integers, e.g. 0,1,2; got {text!r}') from None


def layout_list(text: str) -> Tuple[str, ...]:
    """``'sequential,steps'`` -> ``('sequential', 'steps')`` (an argparse type)."""
    layouts = tuple(text.split(','))
    if not layouts or any(layout not in LAYOUTS for layout in layouts):
        raise argparse.ArgumentTypeError(
            f'expected comma-separated layouts of {", ".join(LAYOUTS)}, e.g. '
            f'sequential,steps; got {text!r}')
    return layouts


def layout_blocks(text: str) -> Tuple[str, int]:
    """``'steps:96'`` -> ``('steps', 96)`` (an argparse type)."""
    layout, _, blocks = text.partition(':')
    if layout not in LAYOUTS or not blocks.isdigit():
        raise argparse.ArgumentTypeError(
            f'expected LAYOUT:BLOCKS with LAYOUT one of {", ".join(LAYOUTS)}, e.g. '
            f'steps:96; got {text!r}')
    return layout, int(blocks)


def configure(cfg, **settings):
    """The study config ``cfg`` (a dataclass with a ``recipe``) with every
    setting the user gave (not None): a field of ``cfg`` of that name, else a
    field of its recipe (``epochs``, ``lr``, ...). Lists become tuples, as the
    configs' defaults are."""
    given = {k: tuple(v) if isinstance(v, list) else v
             for k, v in settings.items() if v is not None}
    own = {f.name for f in dataclasses.fields(cfg)}
    recipe = {k: v for k, v in given.items() if k not in own}
    unknown = set(recipe) - {f.name for f in dataclasses.fields(cfg.recipe)}
    if unknown:
        raise TypeError(f'{type(cfg).__name__} and its recipe have no setting '
                        f'{sorted(unknown)}')
    changes = {k: v for k, v in given.items() if k in own}
    return dataclasses.replace(cfg, **changes, recipe=cfg.recipe.with_(**recipe))


def run_options(args: argparse.Namespace) -> Dict:
    """The keyword arguments of a study's ``run`` from ``study_parser``'s options."""
    return dict(workers=args.workers, out_dir=args.out, quiet=args.quiet,
                cache_dir=args.cache)


def finish(report: str, written: Sequence[Optional[str]],
           seconds: Optional[float] = None):
    """Print ``report`` on stdout; the run time and the files ``written`` (None:
    not written) on stderr."""
    print(report)
    if seconds is not None:
        print(f'\n({seconds / 60:.1f} minutes)', file=sys.stderr)
    for path in filter(None, written):
        print(f'wrote {osp.relpath(path)}', file=sys.stderr)
