"""The ``steps_mm`` registry scope, and registration of its modules in the mmdet and
mmseg registries so that plain ``type='StepsConvNeXt'`` works there too.

mmengine imports ``<scope>.registry`` when it meets ``type='steps_mm.X'``, so a
config of any OpenMMLab codebase can name our modules with the scope prefix.
"""
import importlib
import os.path as osp
import re
import sys
from typing import Optional

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
#: codebases whose configs steps_mm ships; mmpretrain (ImageNet pretraining) gets
#: our modules in processes that import ``steps_mm.pretraining``
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
    found = []
    for name in CODEBASES:
        try:
            found.append(importlib.import_module(f'{name}.registry'))
        except ImportError:
            pass
    return found


def register_in(codebase_registry, registry_name: str, modules) -> None:
    """Register ``modules`` in ``codebase_registry.<registry_name>`` (a codebase's
    ``registry`` module), skipping names it has already."""
    registry = getattr(codebase_registry, registry_name)
    for module in modules:
        if module.__name__ not in registry.module_dict:
            registry.register_module(module=module)


def register_everywhere(registry_name: str, *modules):
    """Register ``modules`` in our scope and in each installed codebase's
    registry called ``registry_name`` (``MODELS``, ``OPTIM_WRAPPERS``,
    ``OPTIM_WRAPPER_CONSTRUCTORS``); mmpretrain's get them where
    ``steps_mm.pretraining`` is imported."""
    REGISTERED.append((registry_name, modules))
    register_in(sys.modules[__name__], registry_name, modules)
    for codebase in installed_codebases():
        register_in(codebase, registry_name, modules)
