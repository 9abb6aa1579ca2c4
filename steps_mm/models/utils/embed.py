"""Resizing of learned position tables to another input or window size: a leaf
module (torch only), used by the backbones and the checkpoint loader."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


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
