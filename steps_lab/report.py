"""Output shared by the research tools: Markdown tables on stdout, progress on
stderr, and ``--out DIR`` with a JSON file for machines and PNG plots."""
import json
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence

from steps_mm.analysis import markdown_table  # noqa: F401  (the tools' tables)


def tool_parser(doc: str):
    """An argparse parser for a tool whose module docstring is ``doc``: its first
    paragraph as the description, the rest, verbatim, after the options."""
    import argparse
    return argparse.ArgumentParser(
        description=doc.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split('\n\n', 1)[1])


def write_json(out_dir: Optional[str], name: str, data) -> Optional[str]:
    """Write ``data`` to ``out_dir/name`` (nothing when ``out_dir`` is None)."""
    if not out_dir:
        return None
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, name)
    with open(path, 'w') as f:
        json.dump(data, f, indent=1)
    return path


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.2, nrows: int = 1):
    """A matplotlib figure on the file-only Agg backend (no display needed) and
    its panels, row by row."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False)
    return fig, list(axes.flat)


def save_figure(fig, out_dir: str, name: str) -> str:
    import matplotlib.pyplot as plt
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class Progress:
    """``[i/n] what (elapsed, eta)`` lines on stderr, so stdout stays a table."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.done, self.quiet = total, 0, quiet
        self.start = time.time()

    def step(self, what: str):
        self.done += 1
        if self.quiet:
            return
        elapsed = time.time() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        print(f'[{self.done}/{self.total}] {what} ({elapsed:.0f}s, eta {eta:.0f}s)',
              file=sys.stderr, flush=True)


def mean_std(values: Sequence[float]):
    """Mean and population standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    return mean, (sum((v - mean) ** 2 for v in values) / n) ** 0.5
