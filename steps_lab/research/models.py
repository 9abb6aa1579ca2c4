"""The small models of the research tools, built from the library's own pieces
(``StepsViT``, ``StepsStage``, ``ResidualBlock``) so that the three layouts are
the ones the backbones use.

- ``deit_like``: a narrow DeiT on 28x28 digits (patch 7, 16 tokens + class token),
  as a ``StepsImageClassifier``.
- ``conv_net``: the shallow paper's residual conv net, sequential or parallel,
  with PyTorch's default initialisation (the paper does not state one, and no
  steps_mm backbone declares one for these plain conv layers).
"""
import logging
import math
from contextlib import contextmanager
from typing import Dict, Tuple

import torch
import torch.nn as nn

from steps_mm.models import ResidualBlock, StepsImageClassifier, StepsStage

HEAD_DIM = 8  # attention head width of the DeiT-like models (narrow: tiny models)


def round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def deit_like_arch(width: int, blocks: int, layout: str) -> dict:
    """A ``StepsViT`` arch dict with ``blocks`` blocks of width ``width``
    (sequential, parallel) or, for steps, the paper's DeiT rule: widths
    ``C/2, ~C/sqrt(2), C`` (multiples of the head width) with ``blocks/2,
    blocks/4, blocks/4`` blocks, so that ``2D`` steps blocks cost about what
    ``D`` sequential blocks cost (Steps-DeiT-T/S/B: 12+6+6 against 12)."""
    if width % (2 * HEAD_DIM):
        raise ValueError(f'width must be a multiple of {2 * HEAD_DIM} (the narrowest '
                         f'step, width/2, has heads of {HEAD_DIM}), got {width}')
    if layout == 'steps' and blocks % 4:
        raise ValueError(f'a steps DeiT-like model splits its blocks 1/2, 1/4, 1/4 '
                         f'over three steps: blocks must be a multiple of 4, '
                         f'got {blocks}')
    widths = [width // 2, round_to(width / math.sqrt(2), HEAD_DIM), width]
    if len(set(widths)) < 3:
        raise ValueError(f'width {width} is too narrow for three distinct step '
                         f'widths of multiples of {HEAD_DIM}; use at least '
                         f'{4 * HEAD_DIM}')
    return dict(channels=[width], depths=[blocks],
                heads={w: w // HEAD_DIM for w in widths},
                steps=[[(widths[0], blocks // 2), (widths[1], blocks // 4),
                        (widths[2], blocks // 4)]])


def deit_like(width: int, blocks: int, layout: str, num_classes: int = 10,
              drop_path_rate: float = 0.) -> StepsImageClassifier:
    """A DeiT-like classifier of 28x28 grey images (see ``deit_like_arch``),
    initialised as every ``StepsViT`` run is (``init_weights``: truncated-normal
    Linear weights of std 0.02, zero biases, unit LayerNorms), not with
    PyTorch's per-layer defaults (3-5x larger at these widths)."""
    model = StepsImageClassifier(dict(
        type='StepsViT', arch=deit_like_arch(width, blocks, layout), layout=layout,
        img_size=28, patch_size=7, in_channels=1, drop_path_rate=drop_path_rate),
        num_classes=num_classes)
    with _quiet_mmengine():  # it would log every parameter's init
        model.init_weights()
    return model


@contextmanager
def _quiet_mmengine():
    """mmengine's current logger at WARNING within the block."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class ConvResidual(ResidualBlock):
    """``x + conv(relu(x))``: one conv layer per residual branch, as the shallow
    paper's nets (no normalisation, so that summing branches is the first-order
    Taylor term of the sequential stack exactly)."""

    layer_count = 1

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size,
                              padding=kernel_size // 2)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.relu(x))


class ConvNet(nn.Module):
    """4x4 patchify stem (28x28 -> 7x7), ``layers`` residual conv layers in the
    given layout, global average pool, linear classifier."""

    def __init__(self, layers: int, filters: int, kernel_size: int, layout: str,
                 num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        if layout not in ('sequential', 'parallel'):
            raise ValueError(f"conv_net layout must be 'sequential' or 'parallel', "
                             f'got {layout!r}')
        self.stem = nn.Conv2d(in_channels, filters, 4, stride=4)
        self.stage = StepsStage([(filters, layers)],
                                lambda width, k: ConvResidual(width, kernel_size),
                                parallel=layout == 'parallel')
        self.head = nn.Linear(filters, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stage(self.stem(x)))
        return self.head(x.mean((-2, -1)))


def conv_net(layers: int, filters: int, kernel_size: int, layout: str) -> ConvNet:
    return ConvNet(layers, filters, kernel_size, layout)


def build(spec: Dict) -> nn.Module:
    """A model from its description ``dict(kind='deit_like' | 'conv_net', ...)``,
    as stored in the research tools' checkpoints."""
    spec = dict(spec)
    kind = spec.pop('kind')
    factories = dict(deit_like=deit_like, conv_net=conv_net)
    if kind not in factories:
        raise ValueError(f'unknown model kind {kind!r}; one of {sorted(factories)}')
    return factories[kind](**spec)


def save_checkpoint(model: nn.Module, spec: Dict, path: str, **meta):
    torch.save(dict(spec=spec, state_dict=model.state_dict(), meta=meta), path)


def load_checkpoint(path: str) -> Tuple[nn.Module, Dict]:
    """``(model, checkpoint)`` from a file written by ``save_checkpoint``."""
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, dict) or 'spec' not in ckpt:
        raise ValueError(f'{path} is not a research-tool checkpoint (a dict with '
                         f"'spec' and 'state_dict'); write one with "
                         f'tools/probe_paths.py --save or tools/shortcut_ratio.py '
                         f'--save')
    model = build(ckpt['spec'])
    model.load_state_dict(ckpt['state_dict'])
    return model, ckpt

