from .crash_safety import enable_crash_safety
from .layer_decay import StepsLayerDecayOptimizerConstructor
from .optim_wrapper import AutoAmpOptimWrapper

__all__ = ['AutoAmpOptimWrapper', 'StepsLayerDecayOptimizerConstructor',
           'enable_crash_safety']
