"""steps_lab: the lab beside the ``steps_mm`` plugin. It holds what tests the
plugin's models rather than what users' configs import: the built-in data and the
demo chain (``demo``), the side-by-side of each Steps model and its twin
(``compare``), tables and intervals from finished runs (``results``), the papers'
claims at laptop scale (``research``), Table-1 fidelity, speed benchmarks and the
installer. It uses ``steps_mm`` through its public names only; ``steps_mm``
never imports it.

The lab runs from a checkout of the repository: it trains the shipped
``configs/`` and writes under ``work_dirs/``. ``tools/install.sh`` installs
steps_mm editable, which puts the checkout on ``sys.path``, so
``import steps_lab`` works from any folder there; the wheel carries only
``steps_mm`` (docs/internals.md).
"""
import os.path as osp

#: the checkout that holds this package (``configs/`` beside it)
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def checkout_path(*parts: str) -> str:
    """``ROOT/parts``, or a ``FileNotFoundError`` that says the lab needs a
    checkout where it is missing."""
    path = osp.join(ROOT, *parts)
    if not osp.exists(path):
        raise FileNotFoundError(
            f'{path} does not exist: steps_lab runs from a checkout of the steps_mm '
            f'repository, with configs/ beside steps_lab/ (git clone it, then bash '
            f'tools/install.sh)')
    return path
