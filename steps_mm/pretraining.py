"""ImageNet pretraining with mmpretrain: steps_mm's modules in its registries.

The det/seg path needs neither mmpretrain nor torchvision, and importing mmpretrain
costs seconds (and fails where torchvision is missing). So ``import steps_mm`` only
arms an import hook: when a process imports mmpretrain (mmengine does, for a config
with ``default_scope='mmpretrain'``), the torchvision stand-in is enabled where no
torchvision exists, and as soon as ``mmpretrain.registry`` has run, every module
steps_mm registered (backbones, classifier, optimizer wrapper and constructor) is
registered there too. A config therefore needs only
``custom_imports=dict(imports=['steps_mm'])``, as in mmdet and mmseg.
"""
import importlib.abc
import sys

from . import torchvision_standin
from .registry import REGISTERED, register_in

HOOKED = ('mmpretrain', 'mmpretrain.registry')


def register_in_mmpretrain(registry_module) -> None:
    for registry_name, modules in REGISTERED:
        register_in(registry_module, registry_name, modules)


class _HookedLoader(importlib.abc.Loader):
    """Runs the real loader of a hooked module, with our steps around it."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if module.__name__ == 'mmpretrain':
            torchvision_standin.enable()
        self.loader.exec_module(module)
        if module.__name__ == 'mmpretrain.registry':
            register_in_mmpretrain(module)

    def __getattr__(self, name):  # get_filename, get_source, ... of the real one
        return getattr(self.loader, name)


class MMPretrainHook(importlib.abc.MetaPathFinder):
    """Finds the hooked modules with the other finders and wraps their loader."""

    def find_spec(self, name, path, target=None):
        if name not in HOOKED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
                    spec.loader = _HookedLoader(spec.loader)
                return spec
        return None


def arm() -> None:
    """Register in mmpretrain now if it is imported already, else when it is."""
    if 'mmpretrain.registry' in sys.modules:
        register_in_mmpretrain(sys.modules['mmpretrain.registry'])
    elif not any(isinstance(f, MMPretrainHook) for f in sys.meta_path):
        sys.meta_path.insert(0, MMPretrainHook())
