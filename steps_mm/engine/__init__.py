from .crash_safety import CrashSafeRunner
from .layer_decay import StepsLayerDecayOptimizerConstructor
from .optim_wrapper import AutoAmpOptimWrapper

__all__ = ['AutoAmpOptimWrapper', 'CrashSafeRunner',
           'StepsLayerDecayOptimizerConstructor']
