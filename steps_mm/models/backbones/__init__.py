from typing import Dict

from .base import StepsBackbone
from .convnext import StepsConvNeXt
from .resnet import StepsResNet
from .swin import StepsSwinTransformer
from .vit import StepsViT

#: every backbone registered in the steps_mm, mmdet and mmseg registries
BACKBONES = [StepsConvNeXt, StepsSwinTransformer, StepsResNet, StepsViT]
#: family key (``convert_checkpoint.py --family``) -> backbone class
FAMILIES = {cls.family: cls for cls in BACKBONES}


def named_backbones() -> Dict[str, dict]:
    """Every family's models by the tools' names (``Swin-T``, ``Steps-Swin-T``...)
    -> their backbone configs; see ``StepsBackbone.named_models``."""
    return {name: cfg for cls in BACKBONES for name, cfg in cls.named_models().items()}


__all__ = ['BACKBONES', 'FAMILIES', 'StepsBackbone', 'named_backbones'] + \
    [b.__name__ for b in BACKBONES]
