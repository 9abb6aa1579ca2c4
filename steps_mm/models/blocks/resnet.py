"""The ResNet blocks (He et al., 2016), named as in mmdet's ``BasicBlock`` and
``Bottleneck`` (``conv1``, ``bn1``, ..., ``downsample.{0,1}``; the stride on the
3x3 conv, mmdet's ``style='pytorch'``), so their weights map by name."""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

from ..layers import DropPath
from ..steps import ResidualBlock

BN = dict(type='BN', requires_grad=True)


class ResNetBlock(ResidualBlock):
    """``relu(shortcut(x) + residual(x))``: a ResNet block applies its ReLU after
    the addition.

    ``residual(x)`` is the branch before that ReLU, so the parallel layout computes
    ``x + sum_j f_j(x)`` with the branches ``f_j`` of the baseline's blocks (the
    formula of arXiv 2309.08414) and no ReLU after the sum: a parallel step does
    not rectify its output. The steps and sequential layouts call ``forward`` and
    are the usual ResNet.

    A block that changes the width or the resolution (the first block of a stage)
    has a projection shortcut ``downsample`` (1x1 conv with the stride, BN).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 norm_cfg: dict = BN):
        super().__init__()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                build_norm_layer(norm_cfg, out_channels)[1])
        self.relu = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.Module:
        """The norm that ends the branch (zero-initialised to start as identity)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.residual(x)
        # in place, as mmdet: a fresh tensor the norm's backward does not read
        # (one allocation fewer: a bottleneck's CPU training step is ~5% faster)
        out += shortcut
        return self.relu(out)


class BasicBlock(ResNetBlock):
    """3x3 conv (stride), BN, ReLU, 3x3 conv, BN: ResNet-18/34; width = I/O width."""

    layer_count = 2  # the paper's count: projection shortcuts are not layers

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 drop_path_rate: float = 0., norm_cfg: dict = BN):
        super().__init__(in_channels, out_channels, stride, norm_cfg)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.drop_path = DropPath(drop_path_rate)

    @property
    def last_norm(self) -> nn.Module:
        return self.bn2

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.drop_path(self.bn2(self.conv2(x)))


class Bottleneck(ResNetBlock):
    """1x1 conv, BN, ReLU, 3x3 conv (stride), BN, ReLU, 1x1 conv, BN: ResNet-50.
    The bottleneck width is a quarter of the output (I/O) width."""

    expansion = 4
    layer_count = 3  # the paper's count: projection shortcuts are not layers

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 drop_path_rate: float = 0., norm_cfg: dict = BN):
        super().__init__(in_channels, out_channels, stride, norm_cfg)
        if out_channels % self.expansion:
            raise ValueError(f'Bottleneck: the width {out_channels} must be a '
                             f'multiple of {self.expansion}')
        mid = out_channels // self.expansion
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, mid)[1]
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, mid)[1]
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, out_channels)[1]
        self.drop_path = DropPath(drop_path_rate)

    @property
    def last_norm(self) -> nn.Module:
        return self.bn3

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.drop_path(self.bn3(self.conv3(x)))
