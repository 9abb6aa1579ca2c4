from .base import StepsBackbone
from .convnext import StepsConvNeXt

__all__ = ['StepsBackbone', 'StepsConvNeXt']
