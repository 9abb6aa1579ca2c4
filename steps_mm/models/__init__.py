from .backbones import *  # noqa: F401,F403
from .backbones import BACKBONES, StepsBackbone
from .classifier import StepsImageClassifier
from .steps import LAYOUTS, ResidualBlock, StepsStage, validate_spec

__all__ = ['BACKBONES', 'LAYOUTS', 'ResidualBlock', 'StepsBackbone',
           'StepsImageClassifier', 'StepsStage', 'validate_spec'] + \
    [b.__name__ for b in BACKBONES]
