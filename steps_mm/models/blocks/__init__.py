from .convnext import ConvNeXtBlock
from .swin import SwinBlock

__all__ = ['ConvNeXtBlock', 'SwinBlock']
