"""The Swin Transformer block (Liu et al., 2021) on NHWC maps.

Submodules are named as in mmdet's / mmseg's ``SwinBlock`` (``norm1``,
``attn.w_msa.{qkv,proj,relative_position_bias_table}``, ``norm2``,
``ffn.layers.{0.0,1}``), so their Swin checkpoints load by name. Inputs of any
size are zero-padded at the bottom/right to a multiple of the window, as there.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import FFN, DropPath, attention
from .transformer import PreNormBlock

# FX leaf: its kernel choice reads the tensors, which FX tracing does not have
torch.fx.wrap('attention')

# Swin's additive mask between tokens the cyclic shift brought together from
# opposite borders (finite, so that half precision stays finite).
MASK_VALUE = -100.


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C), H and W multiples of ``window`` -> (B * windows, window**2, C),
    windows in row-major order per image."""
    B, H, W, C = x.shape
    x = x.reshape(B, H // window, window, W // window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, C)


@torch.fx.wrap  # an FX leaf: whether to pad depends on the traced sizes
def pad_to_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) zero-padded at the bottom/right to multiples of ``window``;
    ``x`` itself when they are (``F.pad`` copies even when it pads nothing)."""
    pad_h, pad_w = -x.shape[1] % window, -x.shape[2] % window
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h)) if pad_h or pad_w else x


def window_reverse(windows: torch.Tensor, window: int, H: int, W: int) -> torch.Tensor:
    """The inverse of ``window_partition``: -> (B, H, W, C)."""
    C = windows.shape[-1]
    x = windows.reshape(-1, H // window, W // window, window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, H, W, C)


def shifted_window_mask(H: int, W: int, window: int, shift: int,
                        device=None) -> torch.Tensor:
    """(windows, N, N) additive mask for attention on the map rolled by ``-shift``:
    0 inside a region, ``MASK_VALUE`` across regions. Per axis the rolled map has
    three regions: rows ``[0, H - window)``, ``[H - window, H - shift)`` and the
    wrapped-around rows ``[H - shift, H)``; a token's region is their product."""
    def regions(n):
        ids = torch.zeros(n, dtype=torch.long, device=device)
        ids[n - window:] = 1
        ids[n - shift:] = 2
        return ids

    ids = regions(H)[:, None] * 3 + regions(W)[None, :]
    ids = window_partition(ids[None, :, :, None], window).squeeze(-1)  # windows, N
    return (ids[:, :, None] != ids[:, None, :]).float() * MASK_VALUE


_MASKS: dict = {}  # (H, W, window, shift, device) -> shifted_window_mask


@torch.fx.wrap  # a leaf of FX graphs: its arguments are sizes of traced tensors
def cached_shifted_window_mask(H: int, W: int, window: int, shift: int,
                               device) -> torch.Tensor:
    """``shifted_window_mask``, built once per map size and reused by every
    shifted block (traced as ops under torch.compile / export, which fold it)."""
    if torch.compiler.is_compiling():
        return shifted_window_mask(H, W, window, shift, device)
    key = (H, W, window, shift, str(device))
    if key not in _MASKS:
        if len(_MASKS) >= 64:  # multi-scale inputs: keep the cache bounded
            _MASKS.clear()
        _MASKS[key] = shifted_window_mask(H, W, window, shift, device)
    return _MASKS[key]


def relative_position_index(window: int) -> torch.Tensor:
    """(N, N): the bias-table row of each pair of tokens of a window, from their
    offset (dy, dx) in ``(-window, window)``."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing='ij')).flatten(1)  # 2, N
    offset = coords[:, :, None] - coords[:, None, :] + window - 1  # 2, N, N
    return offset[0] * (2 * window - 1) + offset[1]


class WindowMSA(nn.Module):
    """Multi-head self-attention inside windows, with a relative position bias."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # set here: the backbone's init_cfg initialises Linear and LayerNorm only
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        self.register_buffer('relative_position_index',
                             relative_position_index(window_size))
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def relative_position_bias(self) -> torch.Tensor:
        """(heads, N, N), contiguous. ``index_select`` on the transposed table:
        forward + backward measured 3-4x faster than ``table[index]`` + permute."""
        N = self.relative_position_index.shape[0]
        return self.relative_position_bias_table.t().index_select(
            1, self.relative_position_index.view(-1)).view(-1, N, N)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor = None) -> torch.Tensor:
        """windows: (B * nW, N, C); mask: (nW, N, N) additive, or None."""
        B_, N, C = windows.shape
        qkv = self.qkv(windows).reshape(B_, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B_, heads, N, C/heads
        bias = self.relative_position_bias()[None]  # 1, heads, N, N
        if mask is not None:  # one additive mask: nW, heads, N, N
            bias = bias + mask[:, None]
        out = attention(q, k, v, bias)
        return self.proj(out.transpose(1, 2).reshape(B_, N, C))


class ShiftWindowMSA(nn.Module):
    """W-MSA (``shift_size=0``) or SW-MSA on an NHWC map of any size."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int,
                 shift_size: int = 0):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f'shift_size must be in [0, {window_size}), '
                             f'got {shift_size}')
        self.window_size = window_size
        self.shift_size = shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, window_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, H, W, _ = x.shape
        window, shift = self.window_size, self.shift_size
        x = pad_to_windows(x, window)
        Hp, Wp = x.shape[1:3]
        mask = None
        if shift:
            x = torch.roll(x, (-shift, -shift), dims=(1, 2))
            mask = cached_shifted_window_mask(Hp, Wp, window, shift, x.device)
        x = window_reverse(self.w_msa(window_partition(x, window), mask), window, Hp, Wp)
        if shift:
            x = torch.roll(x, (shift, shift), dims=(1, 2))
        return x[:, :H, :W]


class SwinBlock(PreNormBlock):
    """LN, (S)W-MSA, residual; LN, MLP, residual; drop path on each branch.

    Args:
        embed_dims: the width C of the NHWC input (B, H, W, C).
        num_heads: attention heads; must divide ``embed_dims``.
        window_size: side of the attention windows.
        shift: shift the windows by ``window_size // 2`` (SW-MSA).
        mlp_ratio: MLP hidden width over ``embed_dims``.
        drop_path_rate: stochastic depth of each branch.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7,
                 shift: bool = False, mlp_ratio: float = 4.,
                 drop_path_rate: float = 0.):
        super().__init__()
        if num_heads <= 0 or embed_dims % num_heads:
            raise ValueError(f'SwinBlock: num_heads={num_heads} must divide the '
                             f'width {embed_dims}')
        if window_size <= 0:
            raise ValueError(f'SwinBlock: window_size must be positive, '
                             f'got {window_size}')
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size,
                                   window_size // 2 if shift else 0)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path_rate)

    def attention_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.attn(self.norm1(x)))

    def mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.ffn(self.norm2(x)))
