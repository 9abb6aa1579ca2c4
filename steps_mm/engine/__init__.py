from .optim_wrapper import AutoAmpOptimWrapper

__all__ = ['AutoAmpOptimWrapper']
