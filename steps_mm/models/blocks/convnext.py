"""The ConvNeXt block (Liu et al., 2022), named as in mmpretrain so that
sequential-layout checkpoints of mmpretrain's ConvNeXt load unchanged."""
import torch
import torch.nn as nn

from ..layers import DropPath
from ..steps import ResidualBlock


class ConvNeXtBlock(ResidualBlock):
    """7x7 depthwise conv, LayerNorm, MLP (4x), layer scale, drop path; NCHW in/out."""

    layer_count = 3

    def __init__(self, channels: int, drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6, mlp_ratio: float = 4.):
        super().__init__()
        self.depthwise_conv = nn.Conv2d(channels, channels, 7, padding=3,
                                        groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        hidden = int(mlp_ratio * channels)
        self.pointwise_conv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.pointwise_conv2 = nn.Linear(hidden, channels)
        self.gamma = nn.Parameter(torch.full((channels,), float(layer_scale_init_value))) \
            if layer_scale_init_value > 0 else None
        self.drop_path = DropPath(drop_path_rate)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise_conv(x).permute(0, 2, 3, 1)  # NHWC for LN and Linear
        x = self.pointwise_conv2(self.act(self.pointwise_conv1(self.norm(x))))
        if self.gamma is not None:
            x = x * self.gamma
        return self.drop_path(x.permute(0, 3, 1, 2))
