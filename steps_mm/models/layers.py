"""Small layers shared by the backbone families."""
import contextlib
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (mmpretrain's ``LN2d``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth per sample; the identity in eval mode."""

    def __init__(self, drop_prob: float = 0.):
        super().__init__()
        if not 0. <= drop_prob < 1.:
            raise ValueError(f'drop path probability must be in [0, 1), got {drop_prob}')
        self.drop_prob = drop_prob

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob:.3f}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.:
            return x
        keep = 1. - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class FFN(nn.Module):
    """Linear-GELU-Linear, named as mmcv's FFN (``layers.0.0``, ``layers.1``)."""

    def __init__(self, embed_dims: int, hidden_dims: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden_dims), nn.GELU()),
            nn.Linear(hidden_dims, embed_dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ---- attention -------------------------------------------------------------------
_explicit = False  # see ``explicit_attention``


@contextlib.contextmanager
def explicit_attention(enabled: bool = True):
    """Run ``attention`` as explicit matmul + softmax instead of the fused
    ``scaled_dot_product_attention`` inside the block (for tests of equality)."""
    global _explicit
    previous, _explicit = _explicit, enabled
    try:
        yield
    finally:
        _explicit = previous


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v for q, k, v of shape (B, heads, N, d).

    ``mask`` is additive, (G, heads, N, N) with B a multiple of G (G = 1: one
    mask for all; G = windows: a mask per window of each image, as Swin's
    (B * windows) batches are ordered). The fused kernel runs unless
    ``explicit_attention`` is on, or on CPU when the mask needs a gradient
    (Swin's bias table in training): there torch falls back to its unfused math
    kernel, which measured ~1.5x slower than the explicit matmuls below. mmengine
    counts both paths alike (``steps_mm.analysis.flops``).
    """
    fused = not _explicit and not (
        mask is not None and mask.requires_grad and torch.is_grad_enabled()
        and q.device.type == 'cpu')
    if fused:
        if mask is not None and mask.shape[0] not in (1, q.shape[0]):
            # the fused CPU kernel takes 4-D masks only: one per batch entry
            mask = mask.repeat(q.shape[0] // mask.shape[0], 1, 1, 1)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if mask is None else mask.to(q.dtype))
    if mask is not None:  # (B / G, G, heads, N, d): the mask broadcasts, no copy
        q, k, v = (t.unflatten(0, (-1, mask.shape[0])) for t in (q, k, v))
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if mask is not None:
        # in place into the matmul's fresh output (its backward does not read
        # it), never through a view of it: the TorchScript ONNX exporter drops
        # in-place ops made through a view (the exported model had no mask)
        scores.add_(mask.to(scores.dtype))
    out = scores.softmax(-1) @ v
    return out if mask is None else out.flatten(0, 1)
