"""steps_mm: Step by Step Network (StepsNet) backbones for OpenMMLab.

Importing the package registers the backbones in the ``steps_mm`` registry scope and,
where installed, in mmdet's and mmseg's registries (and in mmpretrain's when a
process imports it, see ``steps_mm.pretraining``); allows the numpy/mmengine types
of mmengine checkpoints in torch's ``weights_only`` loader; and warns, in one line,
about versions outside the tested matrix.
"""
from .checkpoint_safety import allow_mmengine_checkpoints
from .env_check import check_versions
from .version import __version__

check_versions()
allow_mmengine_checkpoints()

from . import engine, models, pretraining  # noqa: E402  (after the checks)
from .registry import register_everywhere  # noqa: E402

register_everywhere('MODELS', *models.BACKBONES, models.StepsImageClassifier)
register_everywhere('OPTIM_WRAPPERS', engine.AutoAmpOptimWrapper)
register_everywhere('OPTIM_WRAPPER_CONSTRUCTORS',
                    engine.StepsLayerDecayOptimizerConstructor)
engine.enable_crash_safety()  # atomic checkpoint writes, checked resume
pretraining.arm()  # mmpretrain's registries get the same modules when it is imported

__all__ = ['__version__', 'engine', 'models']
