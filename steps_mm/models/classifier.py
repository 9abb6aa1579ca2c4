"""A plain ImageNet-style classifier around a Steps backbone, used for parameter and
FLOP counts (the paper's Table 1 convention) and for pretraining."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule


class StepsImageClassifier(BaseModule):
    """backbone (last stage, pooled, normalised) -> Linear(num_classes).

    Args:
        backbone: config dict of a registered backbone; ``out_indices`` and
            ``gap_before_final_norm`` are set here.
        num_classes: size of the classification head.
    """

    def __init__(self, backbone: dict, num_classes: int = 1000, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        from ..registry import MODELS
        backbone = dict(backbone, out_indices=-1, gap_before_final_norm=True)
        self.backbone = MODELS.build(backbone)
        self.head = nn.Linear(self.backbone.out_channels[-1], num_classes)
        nn.init.trunc_normal_(self.head.weight, std=.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])
