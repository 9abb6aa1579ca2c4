from .backbones import StepsBackbone, StepsConvNeXt
from .classifier import StepsImageClassifier
from .steps import LAYOUTS, ResidualBlock, StepsStage, validate_spec

__all__ = ['LAYOUTS', 'ResidualBlock', 'StepsBackbone', 'StepsConvNeXt',
           'StepsImageClassifier', 'StepsStage', 'validate_spec']
