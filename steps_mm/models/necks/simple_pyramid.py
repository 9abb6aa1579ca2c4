"""A feature pyramid built from one map: the plain backbone's detection neck of
ViTDet (Li et al., "Exploring Plain Vision Transformer Backbones for Object
Detection", ECCV 2022), for StepsViT / DeiT in mmdet's detectors."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from ...registry import register


@register('MODELS')
class SimpleFeaturePyramid(BaseModule):
    """Maps at several strides from the last output of a plain backbone.

    The last backbone map (stride ``s``, ``C`` channels) is resampled once per
    entry of ``scales``: 4 is two stride-2 transposed convolutions (``C -> C/2 ->
    C/4``, norm and activation between them), 2 one (``C -> C/2``), 1 the map
    itself, 0.5 a 2x2 max pool (``C`` channels). Each resampled map then gets a
    1x1 and a 3x3 convolution to ``out_channels``, each followed by a norm
    (none, and a bias instead, when ``norm_cfg`` is None). Outputs beyond
    ``len(scales)`` (``num_outs``) are max pools with stride 2 of the last one, as
    mmdet's FPN adds P6 for Mask R-CNN's RPN. With the default ``scales`` a
    stride-16 map gives strides 4, 8, 16, 32 (and 64).

    Args:
        in_channels: channels of the backbone's outputs (an int, or a list whose
            last entry is the map used, as ``FPN``'s ``in_channels`` is given).
        out_channels: channels of every output.
        scales: resampling factors, each one of 4, 2, 1, 0.5, in output order.
        num_outs: number of outputs, at least ``len(scales)``.
        norm_cfg: mmcv norm after each convolution (e.g. ``dict(type='SyncBN')``).
        act_cfg: activation between the two transposed convolutions of scale 4.
    """

    SCALES = (4., 2., 1., .5)

    def __init__(self, in_channels: Union[int, Sequence[int]], out_channels: int = 256,
                 scales: Sequence[float] = SCALES, num_outs: int = 5,
                 norm_cfg: Optional[dict] = None, act_cfg: dict = dict(type='GELU'),
                 init_cfg=dict(type='Xavier', layer=['Conv2d', 'ConvTranspose2d'],
                               distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        channels = in_channels if isinstance(in_channels, int) else in_channels[-1]
        unknown = [s for s in scales if s not in self.SCALES]
        if unknown or not scales:
            raise ValueError(f'SimpleFeaturePyramid: scales must be taken from '
                             f'{self.SCALES}, got {list(scales)}')
        if num_outs < len(scales):
            raise ValueError(f'SimpleFeaturePyramid: num_outs ({num_outs}) < '
                             f'len(scales) ({len(scales)})')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.scales, self.num_outs = tuple(scales), num_outs
        self.resample = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for scale in scales:
            width = int(channels / max(scale, 1))
            self.resample.append(self._resample(scale, channels, norm_cfg, act_cfg))
            self.lateral_convs.append(ConvModule(width, out_channels, 1,
                                                 norm_cfg=norm_cfg, act_cfg=None))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1,
                                             norm_cfg=norm_cfg, act_cfg=None))

    @staticmethod
    def _resample(scale: float, channels: int, norm_cfg, act_cfg) -> nn.Module:
        if scale == 1:
            return nn.Identity()
        if scale == .5:
            return nn.MaxPool2d(2, 2)
        half = channels // 2
        layers = [nn.ConvTranspose2d(channels, half, 2, 2)]
        if scale == 4:
            if norm_cfg is not None:
                layers.append(build_norm_layer(norm_cfg, half)[1])
            layers += [build_activation_layer(act_cfg),
                       nn.ConvTranspose2d(half, half // 2, 2, 2)]
        return nn.Sequential(*layers)

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Tuple:
        x = inputs if torch.is_tensor(inputs) else inputs[-1]
        outs = [fpn(lateral(resample(x))) for resample, lateral, fpn in
                zip(self.resample, self.lateral_convs, self.fpn_convs)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
