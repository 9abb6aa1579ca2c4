"""Counting conventions of the StepsNet paper's Table 1: parameters, residual
blocks and layers."""
from typing import Tuple

import torch.nn as nn

from ..models.steps import ResidualBlock


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_blocks_and_layers(model: nn.Module) -> Tuple[int, int]:
    """Residual blocks, and layers as the paper counts them: each block's
    ``layer_count`` (a Transformer block is 5) plus every conv/linear layer
    outside the blocks (stem, downsampling, head)."""
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    inside = {id(m) for b in blocks for m in b.modules()}
    outside = sum(1 for m in model.modules() if id(m) not in inside
                  and isinstance(m, (nn.Conv2d, nn.Linear)))
    missing = sorted({type(b).__name__ for b in blocks if b.layer_count is None})
    if missing:
        raise TypeError(f'blocks without a layer_count: {missing}')
    return len(blocks), sum(b.layer_count for b in blocks) + outside
