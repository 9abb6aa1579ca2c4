"""The ``steps_mm`` registry scope, and registration of its modules where every
codebase's configs find them.

Plain ``type='StepsConvNeXt'``: our modules are registered in mmengine's root
registries, whose children are every codebase's (mmengine looks a plain name up in
the default scope's registry, then in its parents), so the name resolves whichever
of steps_mm and the codebase was imported first; mmpretrain's tools import
mmpretrain only after a config's ``custom_imports``. They are also registered in
mmdet's and mmseg's registries themselves, and in mmpretrain's where this process
has imported it already (importing it would import torchvision).
``type='steps_mm.X'``: mmengine imports ``steps_mm.registry`` for the scope, so a
config of any OpenMMLab codebase can name our modules with the prefix.
"""
import importlib
import os.path as osp
import re
import sys
from typing import Optional

import mmengine.registry
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as \
    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='steps_mm',
                  locations=['steps_mm.models'])
OPTIM_WRAPPERS = Registry('optim wrapper', parent=MMENGINE_OPTIM_WRAPPERS,
                          scope='steps_mm', locations=['steps_mm.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='steps_mm', locations=['steps_mm.engine'])
#: ``runner_type='steps_mm.CrashSafeRunner'`` finds it from every codebase's tools
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='steps_mm',
                   locations=['steps_mm.engine'])

#: codebases whose registries get our modules as soon as steps_mm is imported
CODEBASES = ('mmdet', 'mmseg')
#: codebases whose configs steps_mm ships; mmpretrain's registries get our
#: modules where it is imported already, or by ``steps_mm.pretraining``
CONFIG_CODEBASES = CODEBASES + ('mmpretrain',)

#: what ``register_everywhere`` registered: (registry name, modules)
REGISTERED = []


_SCOPE = re.compile(r"""['"](mm[a-z]+)::""")
_LOCAL_BASE = re.compile(r"""_base_\s*=\s*\[?\s*['"](\.{1,2}/[^'"]+)['"]""")


def inherited_codebase(config: str) -> Optional[str]:
    """The codebase (``mmdet``, ``mmseg``, ``mmpretrain``) whose ``::`` bases
    ``config`` inherits, following local ``_base_`` files, or None; read as
    text, so it works where that codebase is not installed."""
    seen = set()
    while config and config not in seen:
        seen.add(config)
        with open(config) as f:
            text = f.read()
        found = _SCOPE.search(text)
        if found:
            return found.group(1)
        base = _LOCAL_BASE.search(text)
        config = osp.normpath(osp.join(osp.dirname(config), base.group(1))) \
            if base else None
    return None


def codebase_of(config: str) -> str:
    """``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``: the codebase that runs
    ``config``: the one whose bases it inherits, else its ``default_scope`` (read
    without its ``custom_imports``)."""
    scope = inherited_codebase(config)
    if scope is None:
        from mmengine.config import Config
        scope = Config.fromfile(config, import_custom_modules=False).get('default_scope')
    if scope not in CONFIG_CODEBASES:
        raise ValueError(f'{config}: default_scope is {scope!r}; steps_mm runs '
                         f'configs of {list(CONFIG_CODEBASES)}')
    return scope


def installed_codebases():
    """The ``registry`` modules of mmdet and mmseg where installed, and
    mmpretrain's where this process has imported it (never importing it)."""
    found = []
    for name in CODEBASES:
        try:
            found.append(importlib.import_module(f'{name}.registry'))
        except ImportError:
            pass
    if sys.modules.get('mmpretrain.registry') is not None:
        found.append(sys.modules['mmpretrain.registry'])
    return found


def register_in(codebase_registry, registry_name: str, modules) -> None:
    """Register ``modules`` in ``codebase_registry.<registry_name>`` (a
    ``registry`` module: a codebase's or mmengine's), skipping names it has
    already."""
    registry = getattr(codebase_registry, registry_name)
    for module in modules:
        if module.__name__ not in registry.module_dict:
            registry.register_module(module=module)


def register_everywhere(registry_name: str, *modules):
    """Register ``modules`` in the registries called ``registry_name``
    (``MODELS``, ``OPTIM_WRAPPERS``, ``OPTIM_WRAPPER_CONSTRUCTORS``) of our
    scope, of mmengine's root and of ``installed_codebases()``; mmpretrain's
    get them later too where ``steps_mm.pretraining`` is imported."""
    REGISTERED.append((registry_name, modules))
    register_in(sys.modules[__name__], registry_name, modules)
    register_in(mmengine.registry, registry_name, modules)
    for codebase in installed_codebases():
        register_in(codebase, registry_name, modules)


def register(registry_name: str):
    """Class decorator: ``register_everywhere(registry_name, cls)``. Written
    above each class, as mmpretrain's ``@MODELS.register_module()``, so its file
    shows that it is registered, and where: ``type='<class name>'`` resolves in
    mmengine's root registry called ``registry_name``, in mmdet's and mmseg's,
    in mmpretrain's (``steps_mm.pretraining``), and as ``steps_mm.<class name>``."""
    def decorate(cls):
        register_everywhere(registry_name, cls)
        return cls
    return decorate
