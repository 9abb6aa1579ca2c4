from .convnext import ConvNeXtBlock
from .resnet import BasicBlock, Bottleneck, ResNetBlock
from .swin import SwinBlock
from .transformer import MultiheadSelfAttention, TransformerBlock

__all__ = ['BasicBlock', 'Bottleneck', 'ConvNeXtBlock', 'MultiheadSelfAttention',
           'ResNetBlock', 'TransformerBlock', 'SwinBlock']
