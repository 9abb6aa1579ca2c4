"""Markdown tables, as the counters' tools print them."""
from typing import Iterable, Sequence


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence]) -> str:
    lines = ['| ' + ' | '.join(map(str, headers)) + ' |',
             '|' + '---|' * len(headers)]
    lines += ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows]
    return '\n'.join(lines)
