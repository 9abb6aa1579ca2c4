"""Steps-Swin: the Swin Transformer (Liu et al., 2021) with StepsNet stages.

Parameter names and the patch-merging channel order follow mmdet's / mmseg's
``SwinTransformer`` (``patch_embed.projection``, ``stages.{i}.blocks.{j}``,
``stages.{i}.downsample``, ``norm{i}``), so the sequential layout is that model
and loads its (converted) checkpoints by name.
"""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import register
from ..blocks import SwinBlock
from ..pretrained.key_schemes import DROP, KeyScheme, Rule, W, final_norm
from ..steps import StepSpec
from ..utils.embed import PatchEmbed, resize_relative_position_bias_table
from .base import StepsBackbone, dense_outputs, heads_problem

# Steps-Swin: each stage's steps keep sum_i D_i * C_i^2 equal to Swin's stage
# (compute parity; docs/models.md). ``heads`` maps every step width to its heads.
_T_HEADS = {96: 3, 192: 6, 272: 8, 384: 12, 544: 16, 768: 24}
_B_HEADS = {128: 4, 256: 8, 360: 12, 512: 16, 720: 24, 1024: 32}
_STEPS_T_STAGE4 = [(192, 4), (272, 2), (384, 2), (544, 2), (768, 0)]



# ---- checkpoint key schemes: ours = mmdet/mmseg/mmpretrain; official (microsoft), timm
def merge_order(value: torch.Tensor) -> torch.Tensor:
    """PatchMerging weights from the official order of the 2x2 neighbours,
    x0..x3 = (row, col) offsets (0,0), (1,0), (0,1), (1,1), channel-major blocks
    ``[x0 | x1 | x2 | x3]``, to ours (``nn.Unfold``: channel c, offset 2*row+col),
    as mmdet's ``swin_converter``."""
    x = value.reshape(*value.shape[:-1], 4, value.shape[-1] // 4)
    return x[..., [0, 2, 1, 3], :].transpose(-1, -2).reshape(value.shape)


_BLOCK = r'layers\.(\d+)\.blocks\.(\d+)\.'
_BASELINE = [
    Rule(rf'patch_embed\.proj\.{W}', r'patch_embed.projection.\1'),
    Rule(rf'patch_embed\.norm\.{W}', r'patch_embed.norm.\1'),
    Rule(rf'{_BLOCK}(norm1|norm2)\.{W}', r'stages.\1.blocks.\2.\3.\4'),
    Rule(rf'{_BLOCK}attn\.(qkv|proj)\.{W}', r'stages.\1.blocks.\2.attn.w_msa.\3.\4'),
    Rule(rf'{_BLOCK}attn\.relative_position_bias_table',
         r'stages.\1.blocks.\2.attn.w_msa.relative_position_bias_table'),
    Rule(rf'{_BLOCK}mlp\.fc1\.{W}', r'stages.\1.blocks.\2.ffn.layers.0.0.\3'),
    Rule(rf'{_BLOCK}mlp\.fc2\.{W}', r'stages.\1.blocks.\2.ffn.layers.1.\3'),
    Rule(rf'norm\.{W}', final_norm)]
_MERGE = r'layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)'
KEY_SCHEMES = [
    KeyScheme('steps_mm/mmdet/mmseg', [
        Rule(rf'patch_embed\.(projection|norm)\.{W}', r'patch_embed.\1.\2'),
        Rule(r'stages\.(\d+)\.blocks\.(\d+)\.(norm1|norm2|attn\.w_msa\.qkv|'
             rf'attn\.w_msa\.proj|ffn\.layers\.0\.0|ffn\.layers\.1)\.{W}',
             r'stages.\1.blocks.\2.\3.\4'),
        Rule(r'stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.relative_position_bias_table',
             r'stages.\1.blocks.\2.attn.w_msa.relative_position_bias_table'),
        Rule(r'stages\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)',
             r'stages.\1.downsample.\2'),
        Rule(rf'norm(\d+)\.{W}', r'norm\1.\2'),
        Rule(rf'norm\.{W}', final_norm)]),  # mmseg's converted classifiers
    KeyScheme('official', _BASELINE + [
        Rule(_MERGE, r'stages.\1.downsample.\2', merge_order),
        Rule(rf'head\.{W}', DROP)], baseline=True),
    KeyScheme('timm', _BASELINE + [  # timm merges at the start of the next stage
        Rule(_MERGE, lambda m, last: f'stages.{int(m[1]) - 1}.downsample.{m[2]}',
             merge_order), Rule(rf'head\.fc\.{W}', DROP)], baseline=True),
]


class PatchMerging(nn.Module):
    """2x2 neighbourhoods concatenated, LN, Linear 4C -> C_out: NHWC, stride 2.

    Odd sizes are zero-padded at the bottom/right. The concatenated channels are
    in ``nn.Unfold`` order (channel-major, then the 2x2 offset), as mmdet/mmseg.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * in_channels)
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        H, W = x.shape[1] // 2, x.shape[2] // 2
        x = x.reshape(B, H, 2, W, 2, C).permute(0, 1, 3, 5, 2, 4).reshape(B, H, W, 4 * C)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """The blocks of a stage (a ``StepsStage``) and the patch merging after them
    (None in the last stage), as mmdet's ``SwinBlockSequence``."""

    def __init__(self, blocks: nn.Module, downsample: nn.Module = None):
        super().__init__()
        self.blocks = blocks
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> tuple:
        """-> (the stage output, the input of the next stage)."""
        out = self.blocks(x)
        return out, (out if self.downsample is None else self.downsample(out))


@register('MODELS')
class StepsSwinTransformer(StepsBackbone):
    """Swin Transformer backbone with a choice of block layout.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'`` or a dict with
            ``channels``, ``depths`` (the baseline), ``heads`` (width ->
            attention heads, for every width that has blocks) and, for
            ``layout='steps'``, ``steps``. Defaults to 'tiny'.
        layout (str): ``'steps'`` (StepsNet), ``'sequential'`` (Swin) or
            ``'parallel'`` (the baseline's blocks summed, arXiv 2309.08414).
            Defaults to 'steps'.
        in_channels (int): Image channels. Defaults to 3.
        window_size (int): Attention window side; blocks at odd positions
            within each step shift their windows by half of it. Defaults to 7.
        mlp_ratio (float): MLP hidden width over the block width.
            Defaults to 4.
        out_indices (int | Sequence[int], optional): Stages whose outputs are
            returned (negative allowed); None: every stage, as detectors and
            segmentors need. Defaults to None.
        drop_path_rate (float): Stochastic depth, linear over all blocks in
            forward order. Defaults to 0.
        gap_before_final_norm (bool): Pool each output to a vector, then
            normalise; otherwise each output is the normalised NCHW map, as
            detectors, segmentors and mmpretrain's Swin recipes (a pooling
            neck) need. Defaults to False.
        frozen_stages (int): As mmdet's Swin: ``-1`` nothing, ``0`` the patch
            embedding, ``k`` also stages ``0..k-1`` (with the patch merging
            after them and their output norms); kept frozen through
            ``.train()``. Defaults to -1.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        init_cfg (dict | list[dict], optional): See ``StepsBackbone``. None:
            TruncNormal (std 0.02, bias 0) for Linear layers and Constant (1,
            bias 0) for LayerNorms. Defaults to None.
        compile (bool | dict): ``True`` or ``torch.compile`` options: compile
            the whole backbone at its first call (same outputs as eager).
            Defaults to False.
    """

    family, title = 'swin', 'Swin'
    arch_names = {'tiny': 'T', 'small': 'S', 'base': 'B'}
    key_schemes = KEY_SCHEMES
    optional_keys = r'norm\d+\.(weight|bias)'
    derived_keys = r'(.+\.)?(relative_position_index|attn_mask)'
    arch_keys = ('channels', 'depths', 'heads')
    arch_settings = {
        'tiny': dict(channels=[96, 192, 384, 768], depths=[2, 2, 6, 2], heads=_T_HEADS,
                     steps=[[(96, 2)], [(192, 2)],
                            [(192, 6), (272, 3), (384, 3)], _STEPS_T_STAGE4]),
        'small': dict(channels=[96, 192, 384, 768], depths=[2, 2, 18, 2],
                      heads=_T_HEADS,
                      steps=[[(96, 2)], [(192, 2)],
                             [(192, 6), (272, 3), (384, 15)], _STEPS_T_STAGE4]),
        'base': dict(channels=[128, 256, 512, 1024], depths=[2, 2, 18, 2],
                     heads=_B_HEADS,
                     steps=[[(128, 2)], [(256, 2)],
                            [(256, 6), (360, 3), (512, 15)],
                            [(256, 4), (360, 2), (512, 2), (720, 2), (1024, 0)]]),
    }

    def __init__(self, arch: Union[str, dict] = 'tiny', layout: str = 'steps',
                 in_channels: int = 3, window_size: int = 7, mlp_ratio: float = 4.,
                 out_indices: Union[int, Sequence[int], None] = None,
                 drop_path_rate: float = 0., gap_before_final_norm: bool = False,
                 frozen_stages: int = -1, with_cp: bool = False, init_cfg=None,
                 compile: Union[bool, dict] = False):
        if init_cfg is None:
            init_cfg = [dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)]
        super().__init__(arch, layout, with_cp, init_cfg, compile)
        heads: Dict[int, int] = self.arch['heads']
        if not isinstance(heads, dict):
            raise ValueError(f'{type(self).__name__}: arch heads must map each step '
                             f'width to its heads, e.g. {_T_HEADS}, got {heads!r}')
        specs = self.stage_specs(check_width=lambda width: heads_problem(heads, width))
        self.set_stage_outputs(len(specs), out_indices, frozen_stages,
                               gap_before_final_norm)

        channels = self.stage_channels
        self.patch_embed = PatchEmbed(in_channels, channels[0], 4, norm=True)
        rates = self.drop_path_rates(specs, drop_path_rate)
        self.stages = nn.ModuleList()
        for i, (spec, stage_rates) in enumerate(zip(specs, rates)):
            shifts = window_shifts(spec)

            def block(width, k, rates=stage_rates, shifts=shifts):
                return SwinBlock(width, heads[width], window_size, shifts[k],
                                 mlp_ratio, rates[k])

            downsample = PatchMerging(channels[i], channels[i + 1]) \
                if i + 1 < len(specs) else None
            self.stages.append(SwinStage(
                self.build_stage(spec, block, channel_dim=-1), downsample))
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(channels[i]))
        self.apply_freezing()

    def depth_units(self):
        yield 'stem', 0, 'patch_embed'
        for i, stage in enumerate(self.stages):
            if i:  # the patch merging at the end of stage i - 1 feeds stage i
                yield 'downsample', i, f'stages.{i - 1}.downsample'
            for k in range(len(stage.blocks)):
                yield 'block', i, f'stages.{i}.blocks.{k}'

    def resize_loaded(self, name: str, value: torch.Tensor,
                      shape) -> Optional[torch.Tensor]:
        """Bias tables of another window size, resized bicubically."""
        if name.endswith('relative_position_bias_table') and value.ndim == 2:
            return resize_relative_position_bias_table(value, shape)
        return None

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        k = self.frozen_stages
        return [self.patch_embed, *self.stages[:k],
                *(getattr(self, f'norm{i}') for i in range(k) if i in self.out_indices)]

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.patch_embed(x).permute(0, 2, 3, 1)  # NHWC, as the stages take it
        outs = []
        for i, stage in enumerate(self.stages):
            out, x = stage(x)
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(out.mean((1, 2))))
                else:
                    outs.append(norm(out).permute(0, 3, 1, 2))
        return dense_outputs(outs)


def window_shifts(spec: StepSpec) -> list:
    """Per block of a stage: whether it shifts its windows. W-MSA and SW-MSA
    alternate within each step, as within a Swin stage."""
    return [j % 2 == 1 for _, depth in spec for j in range(depth)]
