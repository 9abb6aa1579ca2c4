"""Steps-ConvNeXt: ConvNeXt (Liu et al., 2022) with StepsNet stages.

The parameter names follow mmpretrain's ConvNeXt (``downsample_layers``, ``stages``,
``norm{i}``), so the sequential layout is that model and loads its checkpoints.
"""
from typing import Sequence, Union

import torch
import torch.nn as nn

from ...registry import register
from ..blocks import ConvNeXtBlock
from ..layers import LayerNorm2d
from ..pretrained.key_schemes import DROP, KeyScheme, Rule, W, final_norm
from .base import StepsBackbone, dense_outputs

# Steps-ConvNeXt: Steps-Swin widths, per-stage compute parity.
_STEPS_T_STAGE4 = [(192, 4), (272, 2), (384, 2), (544, 2), (768, 1)]


# ---- checkpoint key schemes: ours = mmpretrain; official (facebookresearch); timm
def _block_rules(prefix, names):
    return [Rule(rf'{prefix}\.{src}\.{W}', rf'stages.\1.\2.{dst}.\3')
            for src, dst in names] + [Rule(rf'{prefix}\.gamma', r'stages.\1.\2.gamma')]


_DOWNSAMPLE = Rule(rf'downsample_layers\.(\d+)\.([01])\.{W}',
                   r'downsample_layers.\1.\2.\3')
KEY_SCHEMES = [
    KeyScheme('steps_mm/mmpretrain', [
        _DOWNSAMPLE, *_block_rules(r'stages\.(\d+)\.(\d+)', [
            (n, n) for n in ('depthwise_conv', 'norm', 'pointwise_conv1',
                             'pointwise_conv2')]),
        Rule(rf'norm(\d+)\.{W}', r'norm\1.\2'), Rule(rf'norm\.{W}', final_norm)]),
    KeyScheme('official', [_DOWNSAMPLE, *_block_rules(r'stages\.(\d+)\.(\d+)', [
        ('dwconv', 'depthwise_conv'), ('norm', 'norm'), ('pwconv1', 'pointwise_conv1'),
        ('pwconv2', 'pointwise_conv2')]),
        Rule(rf'norm\.{W}', final_norm), Rule(rf'head\.{W}', DROP)], baseline=True),
    KeyScheme('timm', [
        Rule(rf'stem\.([01])\.{W}', r'downsample_layers.0.\1.\2'),
        Rule(rf'stages\.(\d+)\.downsample\.([01])\.{W}', r'downsample_layers.\1.\2.\3'),
        *_block_rules(r'stages\.(\d+)\.blocks\.(\d+)', [
            ('conv_dw', 'depthwise_conv'), ('norm', 'norm'),
            ('mlp.fc1', 'pointwise_conv1'), ('mlp.fc2', 'pointwise_conv2')]),
        Rule(rf'head\.norm\.{W}', final_norm), Rule(rf'head\.fc\.{W}', DROP)],
        baseline=True),
]


@register('MODELS')
class StepsConvNeXt(StepsBackbone):
    """ConvNeXt backbone with a choice of block layout.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'`` or a dict with
            ``channels``, ``depths`` (the baseline) and, for ``layout='steps'``,
            ``steps``. Defaults to 'tiny'.
        layout (str): ``'steps'`` (StepsNet), ``'sequential'`` (ConvNeXt) or
            ``'parallel'`` (the baseline's blocks summed, arXiv 2309.08414).
            Defaults to 'steps'.
        in_channels (int): Image channels. Defaults to 3.
        out_indices (int | Sequence[int], optional): Stages whose outputs are
            returned (negative allowed); None: every stage, as detectors and
            segmentors need. Defaults to None.
        drop_path_rate (float): Stochastic depth, linear over all blocks in
            forward order. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale (0 disables it).
            Defaults to 1e-6.
        gap_before_final_norm (bool): Pool each output to a vector, then
            normalise (classification, as mmpretrain's ConvNeXt recipes ask);
            otherwise each output is the normalised NCHW map, as detectors and
            segmentors need. Defaults to False.
        frozen_stages (int): Freeze stages ``0..k-1`` with their stem and
            downsampling (``0`` or ``-1``: none), kept frozen through
            ``.train()``. Defaults to 0.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        init_cfg (dict | list[dict], optional): See ``StepsBackbone``. None:
            TruncNormal (std 0.02, bias 0) for Conv2d and Linear layers and
            Constant (1, bias 0) for LayerNorms. Defaults to None.
        channels_last (bool): NHWC memory for weights and inputs (faster convs
            on CPU; outputs are NCHW tensors in channels-last memory).
            Defaults to False.
        compile (bool | dict): ``True`` or ``torch.compile`` options: compile
            the whole backbone at its first call (same outputs as eager).
            Defaults to False.
    """

    family, title = 'convnext', 'ConvNeXt'
    arch_names = {'tiny': 'T', 'small': 'S', 'base': 'B'}
    key_schemes = KEY_SCHEMES
    optional_keys = r'norm\d+\.(weight|bias)'
    arch_settings = {
        'tiny': dict(channels=[96, 192, 384, 768], depths=[3, 3, 9, 3],
                     steps=[[(96, 3)], [(192, 3)],
                            [(192, 6), (272, 3), (384, 6)], _STEPS_T_STAGE4]),
        'small': dict(channels=[96, 192, 384, 768], depths=[3, 3, 27, 3],
                      steps=[[(96, 3)], [(192, 3)],
                             [(192, 6), (272, 3), (384, 24)], _STEPS_T_STAGE4]),
        'base': dict(channels=[128, 256, 512, 1024], depths=[3, 3, 27, 3],
                     steps=[[(128, 3)], [(256, 3)],
                            [(256, 6), (360, 3), (512, 24)],
                            [(256, 4), (360, 2), (512, 2), (720, 2), (1024, 1)]]),
    }

    def __init__(self, arch: Union[str, dict] = 'tiny', layout: str = 'steps',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int], None] = None,
                 drop_path_rate: float = 0., layer_scale_init_value: float = 1e-6,
                 gap_before_final_norm: bool = False, frozen_stages: int = 0,
                 with_cp: bool = False, init_cfg=None, channels_last: bool = False,
                 compile: Union[bool, dict] = False):
        if init_cfg is None:
            init_cfg = [dict(type='TruncNormal', layer=['Conv2d', 'Linear'],
                             std=.02, bias=0.),
                        dict(type='Constant', layer=['LayerNorm', 'LayerNorm2d'],
                             val=1., bias=0.)]
        super().__init__(arch, layout, with_cp, init_cfg, compile)
        specs = self.stage_specs()
        self.set_stage_outputs(len(specs), out_indices, frozen_stages,
                               gap_before_final_norm)

        channels = self.stage_channels
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, channels[0], kernel_size=4, stride=4),
            LayerNorm2d(channels[0], eps=1e-6))])
        for i in range(1, len(specs)):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm2d(channels[i - 1], eps=1e-6),
                nn.Conv2d(channels[i - 1], channels[i], kernel_size=2, stride=2)))

        rates = self.drop_path_rates(specs, drop_path_rate)
        self.stages = nn.ModuleList([
            self.build_stage(spec, lambda width, k, r=stage_rates: ConvNeXtBlock(
                width, r[k], layer_scale_init_value))
            for spec, stage_rates in zip(specs, rates)])
        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(channels[i], eps=1e-6)
                            if not gap_before_final_norm
                            else nn.LayerNorm(channels[i], eps=1e-6))
        self.use_channels_last(channels_last)
        self.apply_freezing()

    def depth_units(self):
        yield 'stem', 0, 'downsample_layers.0'
        for i, stage in enumerate(self.stages):
            if i:
                yield 'downsample', i, f'downsample_layers.{i}'
            for k in range(len(stage)):
                yield 'block', i, f'stages.{i}.{k}'

    def frozen_modules(self):
        k = max(self.frozen_stages, 0)
        return [m for i in range(k) for m in (self.downsample_layers[i], self.stages[i])]

    def forward(self, x: torch.Tensor) -> tuple:
        outs = []
        for i, (downsample, stage) in enumerate(zip(self.downsample_layers,
                                                    self.stages)):
            x = stage(downsample(x))
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean((-2, -1))))
                else:
                    outs.append(norm(x))
        return dense_outputs(outs)
