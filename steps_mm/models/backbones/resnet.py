"""Steps-ResNet: ResNet-18/34/50 (He et al., 2016) with StepsNet stages 3-4.

The stem (``conv1``, ``bn1``, ``maxpool``) and the blocks are named as in mmdet's
``ResNet``; a stage is split into its first block ``first_blocks.{i}`` (mmdet's
``layer{i+1}.0``: stride and projection shortcut, outside the steps) and the
``StepsStage`` ``stages.{i}`` of the other blocks (``stages.{i}.{k}`` is mmdet's
``layer{i+1}.{k+1}`` in the sequential layout).
"""
from typing import Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch.nn.modules.batchnorm import _BatchNorm

from ...registry import register
from ..blocks import BasicBlock, Bottleneck, ResNetBlock
from ..pretrained.key_schemes import BN, DROP, KeyScheme, Rule, W
from ..steps import run_maybe_checkpointed
from .base import StepsBackbone, dense_outputs


def _widths_times(spec, factor):
    return [(width * factor, depth) for width, depth in spec]


# Steps-ResNet: the widths are the base width of the block
# (its I/O width for basic blocks, the bottleneck width for ResNet-50, whose
# step widths are 4x these I/O widths: 256, 360, 512, 724, 1024 in stage 3).
_STEPS_18 = [[(64, 1)], [(128, 1)],
             [(64, 2), (90, 1), (128, 1), (181, 1), (256, 0)],
             [(64, 2), (90, 1), (128, 1), (181, 1), (256, 1), (362, 1), (512, 0)]]
_STEPS_34 = [[(64, 2)], [(128, 3)],
             [(64, 6), (90, 3), (128, 3), (181, 3), (256, 2)],
             [(64, 2), (90, 1), (128, 1), (181, 1), (256, 1), (362, 1), (512, 1)]]


# ---- checkpoint key schemes: ours; torchvision = timm = mmdet (layer{i}.{k}) -------
_PART = rf'(conv[123]\.weight|bn[123]\.{BN}|downsample\.0\.weight|downsample\.1\.{BN})'


def _torchvision_block(m, last):
    i, k = int(m[1]) - 1, int(m[2])
    return f'first_blocks.{i}.{m[3]}' if k == 0 else f'stages.{i}.{k - 1}.{m[3]}'


_STEM = [Rule(r'conv1\.weight', 'conv1.weight'), Rule(rf'bn1\.{BN}', r'bn1.\1')]
KEY_SCHEMES = [
    KeyScheme('steps_mm', _STEM + [
        Rule(rf'first_blocks\.(\d+)\.{_PART}', r'first_blocks.\1.\2'),
        Rule(rf'stages\.(\d+)\.(\d+)\.{_PART}', r'stages.\1.\2.\3')]),
    KeyScheme('torchvision/timm/mmdet', _STEM + [
        Rule(rf'layer(\d)\.(\d+)\.{_PART}', _torchvision_block),
        Rule(rf'fc\.{W}', DROP)], baseline=True),
]


@register('MODELS')
class StepsResNet(StepsBackbone):
    """ResNet backbone (mmdet's stem and BatchNorm options) with a choice of
    block layout in stages 3-4.

    Args:
        depth (int): 18, 34 (basic blocks) or 50 (bottlenecks). Defaults to 50.
        layout (str): ``'steps'`` (StepsNet), ``'sequential'`` (ResNet) or
            ``'parallel'`` (the branches of each stage's non-first blocks
            summed, arXiv 2309.08414). The first block of each stage is never
            in the steps. Defaults to 'steps'.
        in_channels (int): Image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Stages whose outputs are returned
            (negative allowed). Defaults to (0, 1, 2, 3).
        drop_path_rate (float): Stochastic depth, linear over all blocks in
            forward order, the first blocks of the stages included.
            Defaults to 0.
        gap_before_final_norm (bool): Average-pool each output to a (B, C)
            vector (classification; a ResNet has no final norm); otherwise
            NCHW maps at strides 4, 8, 16, 32. Defaults to False.
        norm_cfg (dict): The norm layers (mmcv ``build_norm_layer``), e.g.
            ``SyncBN``. Defaults to ``dict(type='BN', requires_grad=True)``.
        norm_eval (bool): Keep every BatchNorm in eval mode (frozen
            statistics) during training, as mmdet. Defaults to False.
        frozen_stages (int): As mmdet: ``-1`` nothing, ``0`` the stem, ``k``
            the stem and stages ``0..k-1``; kept frozen through ``.train()``.
            Defaults to -1.
        zero_init_residual (bool): With the default ``init_cfg``,
            ``init_weights`` sets the last norm of every block to 0, so blocks
            start as the identity. Defaults to True.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        init_cfg (dict | list[dict], optional): See ``StepsBackbone``. None:
            Kaiming for Conv2d layers, Constant 1 for BatchNorm and GroupNorm
            (and ``zero_init_residual``). Defaults to None.
        channels_last (bool): NHWC memory for weights and inputs (faster convs
            on CPU; outputs are NCHW tensors in channels-last memory).
            Defaults to False.
        compile (bool | dict): ``True`` or ``torch.compile`` options: compile
            the whole backbone at its first call (same outputs as eager).
            Defaults to False.
    """

    arch_arg = 'depth'
    family, title = 'resnet', 'ResNet'
    arch_names = {18: '18', 34: '34', 50: '50'}
    key_schemes = KEY_SCHEMES
    arch_settings = {
        18: dict(block=BasicBlock, channels=[64, 128, 256, 512], depths=[1, 1, 1, 1],
                 steps=_STEPS_18),
        34: dict(block=BasicBlock, channels=[64, 128, 256, 512], depths=[2, 3, 5, 2],
                 steps=_STEPS_34),
        50: dict(block=Bottleneck, channels=[256, 512, 1024, 2048],
                 depths=[2, 3, 5, 2],
                 steps=[_widths_times(spec, Bottleneck.expansion) for spec in _STEPS_34]),
    }
    # ``depths`` count the blocks after the first block of each stage (ResNet-50
    # has 3, 4, 6, 3 blocks); ``channels`` are the stage (I/O) widths.
    stem_channels = 64

    def __init__(self, depth: int = 50, layout: str = 'steps', in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 drop_path_rate: float = 0., gap_before_final_norm: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False, frozen_stages: int = -1,
                 zero_init_residual: bool = True, with_cp: bool = False,
                 init_cfg=None, channels_last: bool = False,
                 compile: Union[bool, dict] = False):
        if depth not in self.arch_settings:
            raise ValueError(f'StepsResNet: invalid depth {depth!r}; choose one of '
                             f'{sorted(self.arch_settings)}')
        zero_init_residual = zero_init_residual and init_cfg is None  # as mmdet
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                        dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1)]
        super().__init__(self.arch_settings[depth], layout, with_cp, init_cfg,
                         compile)
        self.depth = depth
        self.zero_init_residual = zero_init_residual
        specs = self.stage_specs()
        self.set_stage_outputs(len(specs), out_indices, frozen_stages,
                               gap_before_final_norm)
        self.norm_eval = norm_eval

        stem = self.stem_channels
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, stem)[1]
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        block = self.arch['block']
        rates = self.drop_path_rates(specs, drop_path_rate,
                                     extra_blocks=[1] * len(specs))
        self.first_blocks = nn.ModuleList()
        self.stages = nn.ModuleList()
        in_width = stem
        for i, (spec, width, stage_rates) in enumerate(
                zip(specs, self.stage_channels, rates)):
            # stage_rates: the first block's rate, then those of the steps' blocks
            self.first_blocks.append(block(
                in_width, width, stride=2 if i else 1,
                drop_path_rate=stage_rates[0], norm_cfg=norm_cfg))
            self.stages.append(self.build_stage(
                spec, lambda w, k, r=stage_rates[1:]: block(
                    w, w, drop_path_rate=r[k], norm_cfg=norm_cfg)))
            in_width = width
        self.use_channels_last(channels_last)
        self.apply_freezing()

    def init_weights(self):
        super().init_weights()
        if self.zero_init_residual:
            for module in self.modules():
                if isinstance(module, ResNetBlock):
                    nn.init.zeros_(module.last_norm.weight)

    def depth_units(self):
        yield 'stem', 0, 'conv1'
        yield 'stem', 0, 'bn1'
        for i, stage in enumerate(self.stages):
            yield 'block', i, f'first_blocks.{i}'
            for k in range(len(stage)):
                yield 'block', i, f'stages.{i}.{k}'

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        k = self.frozen_stages
        return [self.conv1, self.bn1, *self.first_blocks[:k], *self.stages[:k]]

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def _first_block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return run_maybe_checkpointed(self.first_blocks[i], x, self.with_cp)

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(self._first_block(i, x))
            if i in self.out_indices:
                outs.append(x.mean((-2, -1)) if self.gap_before_final_norm else x)
        return dense_outputs(outs)
