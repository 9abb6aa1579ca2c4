"""The ``steps_mm`` registry scope, and registration of its modules in the mmdet and
mmseg registries so that plain ``type='StepsConvNeXt'`` works there too.

mmengine imports ``<scope>.registry`` when it meets ``type='steps_mm.X'``, so a
config of any OpenMMLab codebase can name our modules with the scope prefix.
"""
import importlib

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as \
    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='steps_mm',
                  locations=['steps_mm.models'])
OPTIM_WRAPPERS = Registry('optim wrapper', parent=MMENGINE_OPTIM_WRAPPERS,
                          scope='steps_mm', locations=['steps_mm.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='steps_mm', locations=['steps_mm.engine'])

#: codebases whose registries also get our modules, when they are installed
CODEBASES = ('mmdet', 'mmseg')


def codebase_of(config: str) -> str:
    """``'mmdet'`` or ``'mmseg'``: the codebase that runs ``config``, from its
    ``default_scope`` (read without importing its ``custom_imports``)."""
    from mmengine.config import Config
    scope = Config.fromfile(config, import_custom_modules=False).get('default_scope')
    if scope not in CODEBASES:
        raise ValueError(f'{config}: default_scope is {scope!r}; steps_mm runs '
                         f'configs of {list(CODEBASES)}')
    return scope


def installed_codebases():
    found = []
    for name in CODEBASES:
        try:
            found.append(importlib.import_module(f'{name}.registry'))
        except ImportError:
            pass
    return found


def register_everywhere(registry_name: str, *modules):
    """Register ``modules`` in our scope and in each installed codebase's
    registry called ``registry_name`` (``MODELS``, ``OPTIM_WRAPPERS``,
    ``OPTIM_WRAPPER_CONSTRUCTORS``)."""
    ours = globals()[registry_name]
    for codebase in [None] + installed_codebases():
        registry = ours if codebase is None else getattr(codebase, registry_name)
        for module in modules:
            if module.__name__ not in registry.module_dict:
                registry.register_module(module=module)
