from .backbones import *  # noqa: F401,F403
from .backbones import (BACKBONES, FAMILIES, StepsBackbone, model_name_of,
                        named_backbones)
from .classifier import StepsImageClassifier
from .necks import SimpleFeaturePyramid
from .steps import LAYOUTS, ResidualBlock, StepsStage, validate_spec

__all__ = ['BACKBONES', 'FAMILIES', 'LAYOUTS', 'ResidualBlock', 'SimpleFeaturePyramid',
           'StepsBackbone', 'StepsImageClassifier', 'StepsStage', 'model_name_of',
           'named_backbones', 'validate_spec'] + \
    [b.__name__ for b in BACKBONES]
