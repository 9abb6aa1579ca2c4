"""steps_mm: Step by Step Network (StepsNet) backbones for OpenMMLab.

``import steps_mm`` (what ``custom_imports=dict(imports=['steps_mm'])`` does)
registers the backbones, the classifier, the optimizer wrapper and constructor in
the ``steps_mm`` registry scope, in mmengine's root registries (so plain names
resolve from every codebase's scope) and in mmdet's and mmseg's registries where
they are installed (mmpretrain's where it is imported already), and
``CrashSafeRunner`` in the ``steps_mm`` scope; each class registers itself
in its own file (``steps_mm.registry.register``) as ``steps_mm.models`` and
``steps_mm.engine`` import it. It changes nothing else in the process, with
one compatibility exception: torch's ``weights_only`` loader is allowed the
numpy and mmengine types that mmengine checkpoints hold, nothing more
(``steps_mm.checkpoint_safety``). Versions outside the tested matrix get a
one-line warning.

Opt-in, named by configs (docs/runtime.md):
``runner_type='steps_mm.CrashSafeRunner'`` (atomic checkpoint writes, checked
resume; ``steps_mm.engine.crash_safety``) and the import ``steps_mm.pretraining``
(mmpretrain's registries and, without torchvision, its stand-in).
"""
from .checkpoint_safety import allow_mmengine_checkpoints
from .env_check import check_versions
from .version import __version__

check_versions()
allow_mmengine_checkpoints()

from . import engine, models  # noqa: E402  (after the checks)

__all__ = ['__version__', 'engine', 'models']
