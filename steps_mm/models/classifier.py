"""A plain ImageNet-style classifier around a Steps backbone, used for parameter and
FLOP counts (the paper's Table 1 convention) and for pretraining."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ..registry import MODELS, register


@register('MODELS')
class StepsImageClassifier(BaseModule):
    """backbone (last stage, pooled, normalised) -> Linear(num_classes).

    Args:
        backbone: config dict of a registered backbone; ``out_indices`` and
            the backbone's ``classification_output`` arguments are set here.
        num_classes: size of the classification head.
    """

    def __init__(self, backbone: dict, num_classes: int = 1000, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        backbone_cls = MODELS.get(backbone['type'])
        if backbone_cls is None:
            raise KeyError(f'{backbone["type"]!r} is not a registered backbone')
        # the class itself, not MODELS.build: a default scope left by another
        # codebase would make the build look in that codebase's registry
        args = {k: v for k, v in backbone.items() if k != 'type'}
        self.backbone = backbone_cls(**args, out_indices=-1,
                                     **backbone_cls.classification_output)
        self.head = nn.Linear(self.backbone.out_channels[-1], num_classes)
        nn.init.trunc_normal_(self.head.weight, std=.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])
