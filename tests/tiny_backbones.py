"""Small Steps backbones of every family and layout, for quick tests: the same
structure as the shipped archs (4 stages, several steps, a zero-depth step) at
toy widths."""
import torch

from steps_mm import models
from steps_mm.models import (LAYOUTS, StepsConvNeXt, StepsResNet,
                             StepsSwinTransformer, StepsViT)

HEADS = {8: 1, 16: 2, 24: 2, 32: 2, 48: 2, 64: 2}
HIERARCHICAL = dict(channels=[8, 16, 32, 64], depths=[1, 1, 3, 1],
                    steps=[[(8, 1)], [(16, 1)], [(16, 2), (24, 1), (32, 2)],
                           [(32, 1), (48, 1), (64, 0)]])
#: every family, by its backbone's ``family`` key
FAMILIES = tuple(models.FAMILIES)


def tiny_backbone(family: str, layout: str, **kwargs):
    """``(backbone, input)`` for ``family`` in ``layout``."""
    if family == 'convnext':
        return StepsConvNeXt(HIERARCHICAL, layout, out_indices=(0, 1, 2, 3),
                             gap_before_final_norm=False, **kwargs), (2, 3, 64, 64)
    if family == 'swin':
        return StepsSwinTransformer(dict(HIERARCHICAL, heads=HEADS), layout,
                                    window_size=2, out_indices=(0, 1, 2, 3),
                                    gap_before_final_norm=False, **kwargs), (2, 3, 64, 64)
    if family == 'resnet':  # ResNet archs are fixed by depth: the smallest
        return StepsResNet(18, layout, **kwargs), (2, 3, 64, 64)
    if family == 'deit':
        arch = dict(channels=[32], depths=[4], heads=HEADS,
                    steps=[[(16, 2), (24, 1), (32, 1)]])
        return StepsViT(arch, layout, img_size=32, patch_size=8, out_indices=(1, 3),
                        out_type='featmap', **kwargs), (2, 3, 32, 32)
    raise ValueError(f'no tiny {family!r} backbone: add one to tests/tiny_backbones.py')


#: every (family, layout)
CASES = [(family, layout) for family in FAMILIES for layout in LAYOUTS]


def make_input(shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))
