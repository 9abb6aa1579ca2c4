"""The patch embedding of the transformer backbones, and resizing of learned
position tables to another input or window size: a leaf module (torch only),
used by the backbones and the checkpoint loader."""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` conv (``projection``), then, with ``norm``,
    a LayerNorm over channels (``norm``): NCHW image -> NCHW map. The image is
    zero-padded at the bottom/right to a multiple of the patch (as mmseg's ViT),
    so patch 16 turns a 65x97 input into a 5x7 grid. Swin: patch 4, ``norm``;
    ViT: patch 16, no norm."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 norm: bool = False):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        if norm:
            self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = self.projection(F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p)))
        if hasattr(self, 'norm'):  # over channels, in NHWC; a view back to NCHW
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x


def resize_pos_embed(pos_embed: torch.Tensor, grid: Tuple[int, int],
                     new_grid: Tuple[int, int]) -> torch.Tensor:
    """(1, 1 + H*W, C) -> (1, 1 + h*w, C): the patch entries resized bicubically
    (as mmseg's and mmpretrain's ViT), the class token's entry unchanged."""
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
    patch_pos = patch_pos.reshape(1, *grid, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos, size=new_grid, mode='bicubic',
                              align_corners=False)
    return torch.cat([cls_pos, patch_pos.flatten(2).transpose(1, 2)], 1)


def resize_square_pos_embed(pos_embed: torch.Tensor,
                            new_grid: Tuple[int, int]) -> Optional[torch.Tensor]:
    """``resize_pos_embed`` of a checkpoint's (1, 1 + s*s, C) embedding, whose
    grid is square as checkpoints' grids are; None when it is not of that form."""
    side = math.isqrt(pos_embed.shape[1] - 1) if pos_embed.ndim == 3 else 0
    if not side or side * side != pos_embed.shape[1] - 1:
        return None
    resized = resize_pos_embed(pos_embed.float(), (side, side), new_grid)
    return resized.to(pos_embed.dtype)


def resize_relative_position_bias_table(table: torch.Tensor,
                                        shape) -> Optional[torch.Tensor]:
    """A Swin relative-position bias table ((2w-1)^2, heads) for another window,
    bicubic over the (2w-1) x (2w-1) grid of offsets; None if it cannot be."""
    (n_old, heads), (n_new, heads_new) = table.shape, shape
    old, new = math.isqrt(n_old), math.isqrt(n_new)
    if heads != heads_new or old * old != n_old or new * new != n_new:
        return None
    grid = table.T.reshape(1, heads, old, old).float()
    out = F.interpolate(grid, size=(new, new), mode='bicubic', align_corners=False)
    return out.reshape(heads, n_new).T.to(table.dtype).contiguous()
