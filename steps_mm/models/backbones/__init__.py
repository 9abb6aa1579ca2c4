from typing import Dict, Optional

from .base import StepsBackbone
from .convnext import StepsConvNeXt
from .resnet import StepsResNet
from .swin import StepsSwinTransformer
from .vit import StepsViT

#: every backbone registered in the steps_mm, mmdet and mmseg registries
BACKBONES = [StepsConvNeXt, StepsSwinTransformer, StepsResNet, StepsViT]
#: family key (``convert_checkpoint.py --family``) -> backbone class
FAMILIES = {cls.family: cls for cls in BACKBONES}


def named_backbones() -> Dict[str, dict]:
    """Every family's models by the tools' names (``Swin-T``, ``Steps-Swin-T``...)
    -> their backbone configs; see ``StepsBackbone.named_models``."""
    return {name: cfg for cls in BACKBONES for name, cfg in cls.named_models().items()}


def model_name_of(backbone: dict) -> Optional[str]:
    """The tools' name (``Steps-Swin-T``, ``Swin-T``) of the model a backbone
    config builds; None for another backbone type or a custom arch."""
    kind = str(backbone.get('type', '')).split('.')[-1]  # 'steps_mm.StepsViT'
    cls = next((c for c in BACKBONES if c.__name__ == kind), None)
    if cls is None:
        return None
    arch = backbone.get(cls.arch_arg, cls.default_arch())
    if not isinstance(arch, (str, int)) or arch not in cls.arch_names:
        return None
    return cls.model_name(arch, backbone.get('layout', 'steps'))


__all__ = ['BACKBONES', 'FAMILIES', 'StepsBackbone', 'model_name_of',
           'named_backbones'] + \
    [b.__name__ for b in BACKBONES]
