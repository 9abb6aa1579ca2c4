"""Counting conventions of the StepsNet paper's Table 1: parameters, FLOPs as
multiply-accumulates (attention matmuls included), residual blocks and layers."""
from typing import Tuple

import torch
import torch.nn as nn

from .models.steps import ResidualBlock


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def sdpa_flop_jit(inputs, outputs) -> int:
    """MACs of ``aten::scaled_dot_product_attention``: ``q @ k^T`` and
    ``attn @ v``, as the explicit matmuls would count (the softmax, like every
    elementwise op, counts zero). mmengine counts the fused op as zero without it."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for dim in q[:-2]:
        batch *= dim
    n, d, m, dv = q[-2], q[-1], k[-2], v[-1]
    return batch * n * m * (d + dv)


def flop_analyzer(model: nn.Module, inputs: tuple):
    """mmengine's FlopAnalyzer for ``model(*inputs)`` that also counts the fused
    attention op, with its per-op warnings off."""
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    return analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)


def count_flops(model: nn.Module, size: Tuple[int, int] = (224, 224)) -> int:
    """Multiply-accumulates of one forward pass of a 1x3xHxW image, counted by
    mmengine's FlopAnalyzer (fvcore's convention: one MAC is one FLOP)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        total = flop_analyzer(model, (torch.zeros(1, 3, *size),)).total()
    model.train(was_training)
    return total


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
