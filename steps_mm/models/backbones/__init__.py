from .base import StepsBackbone
from .convnext import StepsConvNeXt
from .swin import StepsSwinTransformer

#: every backbone registered in the steps_mm, mmdet and mmseg registries
BACKBONES = [StepsConvNeXt, StepsSwinTransformer]

__all__ = ['BACKBONES', 'StepsBackbone'] + [b.__name__ for b in BACKBONES]
