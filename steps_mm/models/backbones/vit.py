"""Steps-DeiT: the patch-16 ViT / DeiT (Dosovitskiy et al., 2021; Touvron et al.,
2021) whose whole trunk is one StepsNet stage.

Parameter names follow mmpretrain's ``VisionTransformer`` (``patch_embed.projection``,
``cls_token``, ``pos_embed``, ``layers.{k}``, final norm ``ln1``), so the sequential
layout is that model (DeiT without distillation token) and loads its checkpoints.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ...registry import register
from ..blocks import TransformerBlock
from ..pretrained.key_schemes import DROP, KeyScheme, Rule, W
from ..steps import StepsStage
from ..utils.embed import PatchEmbed, resize_pos_embed, resize_square_pos_embed
from .base import StepsBackbone, dense_outputs, heads_problem

# ---- checkpoint key schemes: ours = mmpretrain = mmseg; official = timm -----------
_TOKENS = [Rule('cls_token', 'cls_token'), Rule('pos_embed', 'pos_embed')]
KEY_SCHEMES = [
    KeyScheme('steps_mm/mmpretrain/mmseg', _TOKENS + [
        Rule(rf'patch_embed\.projection\.{W}', r'patch_embed.projection.\1'),
        Rule(rf'layers\.(\d+)\.(ln1|ln2|attn\.qkv|attn\.proj|ffn\.layers\.0\.0|'
             rf'ffn\.layers\.1)\.{W}', r'layers.\1.\2.\3'),
        # mmseg's attention is an nn.MultiheadAttention
        Rule(rf'layers\.(\d+)\.attn\.attn\.in_proj_{W}', r'layers.\1.attn.qkv.\2'),
        Rule(rf'layers\.(\d+)\.attn\.attn\.out_proj\.{W}', r'layers.\1.attn.proj.\2'),
        Rule(rf'ln1\.{W}', r'ln1.\1')]),
    KeyScheme('official/timm', _TOKENS + [
        Rule(rf'patch_embed\.proj\.{W}', r'patch_embed.projection.\1'),
        *(Rule(rf'blocks\.(\d+)\.{src}\.{W}', rf'layers.\1.{dst}.\2')
          for src, dst in (('norm1', 'ln1'), ('attn.qkv', 'attn.qkv'),
                           ('attn.proj', 'attn.proj'), ('norm2', 'ln2'),
                           ('mlp.fc1', 'ffn.layers.0.0'), ('mlp.fc2', 'ffn.layers.1'))),
        Rule(rf'norm\.{W}', r'ln1.\1'), Rule(rf'head\.{W}', DROP)], baseline=True),
]


@register('MODELS')
class StepsViT(StepsBackbone):
    """ViT / DeiT backbone with a choice of block layout.

    Outputs are taken after blocks of the trunk, indexed in forward order over all
    its blocks. In the steps layout a block of step ``i`` works on the first
    ``C_i < C`` channels; the trunk *state* after it, which is what an output
    holds, is that block's output concatenated with the input channels
    ``C_i..C`` no step has processed yet (what the next step would read), so every
    output has width C. In the parallel layout the state after block ``k`` is the
    partial sum ``x + f_0(x) + ... + f_k(x)``. The last block's state is the trunk
    output, normalised by the final norm ``ln1`` when ``final_norm``.

    Args:
        arch (str | dict): ``'deit-tiny'``, ``'deit-small'``, ``'deit-base'`` or
            a dict with ``channels`` ([C]), ``depths`` ([blocks]), ``heads``
            (width -> attention heads, for every width that has blocks) and,
            for ``layout='steps'``, ``steps`` ([spec]). Defaults to 'deit-small'.
        layout (str): ``'steps'`` (StepsNet), ``'sequential'`` (DeiT) or
            ``'parallel'`` (the baseline's blocks summed, arXiv 2309.08414).
            Defaults to 'steps'.
        img_size (int | tuple[int, int]): The input size the position embedding
            is made for; other sizes get it resized bicubically to their
            (padded) patch grid. Defaults to 224.
        patch_size (int): Side of the patches. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        mlp_ratio (float): MLP hidden width over the block width.
            Defaults to 4.
        out_indices (int | Sequence[int]): Blocks whose states are returned
            (negative allowed). Defaults to -1.
        drop_path_rate (float): Stochastic depth, linear over all blocks in
            forward order. Defaults to 0.
        final_norm (bool): Normalise the last block's state (DeiT: True;
            mmseg's ViT recipes: False, and then no final norm is built, as
            in mmseg). Defaults to True.
        out_type (str): ``'featmap'``: the patch tokens of each output as an
            NCHW map (B, C, ceil(H/patch_size), ceil(W/patch_size)), for dense
            prediction (e.g. mmseg's ``MultiLevelNeck``); ``'cls_token'``: the
            class token, a (B, C) vector, as mmpretrain's
            ``VisionTransformer`` gives its classification head.
            Defaults to 'featmap'.
        frozen_stages (int): ``-1`` nothing, ``0`` the patch embedding, class
            token and position embedding, ``k`` also blocks ``0..k-1`` (and
            the final norm when all blocks are frozen); kept frozen through
            ``.train()``. Defaults to -1.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        init_cfg (dict | list[dict], optional): See ``StepsBackbone``. None:
            TruncNormal (std 0.02, bias 0) for Linear layers and Constant (1,
            bias 0) for LayerNorms. Defaults to None.
        compile (bool | dict): ``True`` or ``torch.compile`` options: compile
            the whole backbone at its first call (same outputs as eager).
            Defaults to False.
    """

    family, title = 'deit', 'DeiT'
    arch_names = {'deit-tiny': 'T', 'deit-small': 'S', 'deit-base': 'B'}
    key_schemes = KEY_SCHEMES
    optional_keys = r'ln1\.(weight|bias)'  # the final norm
    arch_keys = ('channels', 'depths', 'heads')
    OUT_TYPES = ('featmap', 'cls_token')
    classification_output = dict(out_type='cls_token')
    # in the Steps layout these blocks are in the first, narrower step: the
    # outputs append the channels no step has processed yet
    several_outputs = dict(out_indices=(3, 7, 11))
    # Steps-DeiT: ``heads`` maps every step width to its heads.
    arch_settings = {
        'deit-tiny': dict(channels=[192], depths=[12], heads={96: 2, 136: 2, 192: 3},
                          steps=[[(96, 12), (136, 6), (192, 6)]]),
        'deit-small': dict(channels=[384], depths=[12], heads={192: 3, 272: 4, 384: 6},
                           steps=[[(192, 12), (272, 6), (384, 6)]]),
        'deit-base': dict(channels=[768], depths=[12], heads={384: 6, 544: 8, 768: 12},
                          steps=[[(384, 12), (544, 6), (768, 6)]]),
    }

    def __init__(self, arch: Union[str, dict] = 'deit-small', layout: str = 'steps',
                 img_size: Union[int, Tuple[int, int]] = 224, patch_size: int = 16,
                 in_channels: int = 3, mlp_ratio: float = 4.,
                 out_indices: Union[int, Sequence[int]] = -1,
                 drop_path_rate: float = 0., final_norm: bool = True,
                 out_type: str = 'featmap', frozen_stages: int = -1,
                 with_cp: bool = False, init_cfg=None,
                 compile: Union[bool, dict] = False):
        if init_cfg is None:
            init_cfg = [dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)]
        super().__init__(arch, layout, with_cp, init_cfg, compile)
        heads = self.arch['heads']
        specs = self.stage_specs(check_width=lambda width: heads_problem(heads, width))
        if len(specs) != 1:
            raise ValueError(f'StepsViT: the trunk is one stage; arch channels must '
                             f'have one entry, got {self.arch["channels"]}')
        spec, self.embed_dims = specs[0], specs[0][-1][0]
        self.num_blocks = sum(depth for _, depth in spec)
        self.set_outputs(self.num_blocks, out_indices, frozen_stages,
                         'out_indices (block indices)')
        self.final_norm = final_norm
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'StepsViT: out_type must be one of {self.OUT_TYPES}, '
                             f'got {out_type!r}')
        self.out_type = out_type

        C = self.embed_dims
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.patch_embed = PatchEmbed(in_channels, C, patch_size)
        # set here: the backbone's init_cfg initialises Linear and LayerNorm only
        self.cls_token = nn.Parameter(
            nn.init.trunc_normal_(torch.zeros(1, 1, C), std=.02))
        self.pos_embed = nn.Parameter(nn.init.trunc_normal_(
            torch.zeros(1, 1 + self.grid[0] * self.grid[1], C), std=.02))
        rates = self.drop_path_rates(specs, drop_path_rate)[0]
        self.layers = self.build_stage(
            spec, lambda width, k: TransformerBlock(width, heads[width], mlp_ratio,
                                                   rates[k]), channel_dim=-1)
        # only where used: DDP stops on parameters without a gradient (mmseg's too)
        self.ln1 = nn.LayerNorm(C, eps=1e-6) if final_norm else None
        # Runners of the blocks between consecutive outputs. A tuple, so they are
        # not registered: they share the blocks of ``self.layers``, whose names
        # therefore do not depend on ``out_indices``.
        self._segments = () if self.layers.parallel else tuple(
            StepsStage(segment_spec(spec, start, stop),
                       lambda width, k, start=start: self.layers[start + k],
                       channel_dim=-1, with_cp=with_cp)
            for start, stop in zip([0] + [k + 1 for k in self.out_indices[:-1]],
                                   [k + 1 for k in self.out_indices]))
        self.register_load_state_dict_pre_hook(resize_loaded_pos_embed)
        self.apply_freezing()

    # ---- options -------------------------------------------------------------
    def resize_loaded(self, name: str, value: torch.Tensor,
                      shape) -> Optional[torch.Tensor]:
        """A position embedding of another (square) patch grid, resized."""
        if name == 'pos_embed' and value.ndim == 3 and value.shape[2] == shape[2]:
            return resize_square_pos_embed(value, self.grid)
        return None

    def depth_units(self):
        for name in ('patch_embed', 'cls_token', 'pos_embed'):
            yield 'stem', 0, name
        for k in range(len(self.layers)):
            yield 'block', 0, f'layers.{k}'

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        k = self.frozen_stages
        tail = [self.ln1] if k == self.num_blocks and self.ln1 is not None else []
        return [self.patch_embed, self.cls_token, self.pos_embed,
                *list(self.layers)[:k], *tail]

    @property
    def feature_info(self):
        return [dict(num_chs=self.embed_dims, reduction=self.patch_embed.patch_size,
                     module=f'layers.{k}') for k in self.out_indices]

    # ---- forward ---------------------------------------------------------------
    def resized_pos_embed(self, h: int, w: int) -> torch.Tensor:
        """The position embedding for an (h, w) patch grid (resized when that is
        not ``self.grid``)."""
        return pos_embed_for(self.pos_embed, self.grid, (h, w))

    def trunk_states(self, x: torch.Tensor):
        """The (B, N, C) trunk state after each block of ``out_indices``, in order."""
        if self.layers.parallel:  # every block reads the trunk input x
            blocks, state = list(self.layers), x
            for k in range(self.out_indices[-1] + 1):
                state = state + self.layers.call(blocks[k].residual, x)
                if k in self.out_indices:
                    yield state
            return
        for segment in self._segments:
            # .forward: FX tracing can call only registered submodules
            x = segment.forward(x)
            yield x

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.patch_embed(x)
        B, _, h, w = x.shape
        x = torch.cat([self.cls_token.expand(B, -1, -1), x.flatten(2).transpose(1, 2)], 1)
        x = x + self.resized_pos_embed(h, w)
        outs = []
        for k, state in zip(self.out_indices, self.trunk_states(x)):
            if k == self.num_blocks - 1 and self.final_norm:
                state = self.ln1(state)
            if self.out_type == 'cls_token':
                outs.append(state[:, 0])
            else:
                outs.append(state[:, 1:].transpose(1, 2).reshape(B, -1, h, w))
        return dense_outputs(outs)


@torch.fx.wrap  # an FX leaf: the traced grid size is known only when it runs
def pos_embed_for(pos_embed: torch.Tensor, grid: Tuple[int, int],
                  new_grid: Tuple[int, int]) -> torch.Tensor:
    """``pos_embed`` if ``new_grid`` is ``grid``, else resized to it."""
    if tuple(new_grid) == tuple(grid):
        return pos_embed
    return resize_pos_embed(pos_embed, grid, new_grid)


def resize_loaded_pos_embed(vit: StepsViT, state_dict: dict, prefix: str, *args):
    """A load_state_dict pre-hook: a checkpoint made at another image size (a
    DeiT at 224 into a 512x512 segmenter) gets its position embedding resized."""
    loaded = state_dict.get(prefix + 'pos_embed')
    if loaded is None or loaded.shape == vit.pos_embed.shape:
        return
    resized = vit.resize_loaded('pos_embed', loaded, vit.pos_embed.shape)
    if resized is not None:
        state_dict[prefix + 'pos_embed'] = resized


def segment_spec(spec, start: int, stop: int) -> list:
    """The spec of blocks ``start..stop-1`` of ``spec``, run as a stage of the full
    width C: applied to the trunk state after block ``start - 1`` it gives the
    state after block ``stop - 1`` (ending with ``(C, 0)`` when it stops inside a
    narrower step, so that the unprocessed channels are appended)."""
    widths = [width for width, depth in spec for _ in range(depth)][start:stop]
    segment = []
    for width in widths:
        if segment and segment[-1][0] == width:
            segment[-1][1] += 1
        else:
            segment.append([width, 1])
    if not segment or segment[-1][0] != spec[-1][0]:
        segment.append([spec[-1][0], 0])
    return [tuple(s) for s in segment]
