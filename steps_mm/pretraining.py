"""Opt-in: ImageNet pretraining with mmpretrain.

Importing this module (``custom_imports=dict(imports=['steps_mm.pretraining'])``,
as every config under ``configs/imagenet/`` has) makes mmpretrain importable where
torchvision is missing (``steps_mm.torchvision_standin``, which says so in one
line), imports mmpretrain's registries and registers every module steps_mm
registered (backbones, classifier, optimizer wrapper and constructor) there too.

Nothing else does: ``import steps_mm`` and the det/seg path never import this
module, so a process that imports mmdet (which try-imports mmpretrain) sees
torchvision exactly as the machine has it.
"""
from . import torchvision_standin
from .registry import REGISTERED, register_in

torchvision_standin.enable()

import mmpretrain.registry  # noqa: E402  (after the stand-in)


def register_in_mmpretrain(registry_module=mmpretrain.registry) -> None:
    for registry_name, modules in REGISTERED:
        register_in(registry_module, registry_name, modules)


register_in_mmpretrain()
