"""An import-only stand-in for torchvision, for mmpretrain on machines without it.

mmpretrain 1.2 imports torchvision at module level (transforms, box ops) although
its ImageNet recipes never call it, and no torchvision on PyPI loads beside a CPU
build of torch that is not its twin. ``enable()`` appends ``site/`` (a package
named ``torchvision`` whose every entry raises on use) to the *end* of
``sys.path``, only when no torchvision can be found at all, so a real one always
wins. steps_mm never needs it; only ``steps_mm.pretraining`` enables it, in the
processes that name it (the ImageNet configs' ``custom_imports``).
"""
import importlib.util
import os.path as osp
import sys

SITE = osp.join(osp.dirname(osp.abspath(__file__)), 'site')


def enable() -> bool:
    """Make the stand-in importable if torchvision is missing; True if it is."""
    if SITE in sys.path:
        return True
    if importlib.util.find_spec('torchvision') is not None:
        return False
    sys.path.append(SITE)
    return True
