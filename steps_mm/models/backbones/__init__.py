from .base import StepsBackbone
from .convnext import StepsConvNeXt

#: every backbone registered in the steps_mm, mmdet and mmseg registries
BACKBONES = [StepsConvNeXt]

__all__ = ['BACKBONES', 'StepsBackbone'] + [b.__name__ for b in BACKBONES]
