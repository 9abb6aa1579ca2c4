from .convnext import ConvNeXtBlock

__all__ = ['ConvNeXtBlock']
