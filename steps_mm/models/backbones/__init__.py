from .base import StepsBackbone
from .convnext import StepsConvNeXt
from .resnet import StepsResNet
from .swin import StepsSwinTransformer
from .vit import StepsViT

#: every backbone registered in the steps_mm, mmdet and mmseg registries
BACKBONES = [StepsConvNeXt, StepsSwinTransformer, StepsResNet, StepsViT]

__all__ = ['BACKBONES', 'StepsBackbone'] + [b.__name__ for b in BACKBONES]
