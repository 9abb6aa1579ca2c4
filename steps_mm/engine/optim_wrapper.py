"""Mixed precision where it exists: AMP on a GPU, the plain fp32 wrapper elsewhere."""
import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ..registry import register

_AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')


@register('OPTIM_WRAPPERS')
def AutoAmpOptimWrapper(**kwargs):
    """Build ``AmpOptimWrapper`` when CUDA is available, else ``OptimWrapper``.

    mmengine's ``AmpOptimWrapper`` refuses to run without a GPU; configs that use this
    type train unchanged on both. The choice is logged once per build.
    """
    if torch.cuda.is_available():
        print_log('AutoAmpOptimWrapper: CUDA found, training with AMP '
                  '(AmpOptimWrapper)', logger='current')
        return AmpOptimWrapper(**kwargs)
    print_log('AutoAmpOptimWrapper: no CUDA device, training in fp32 '
              '(OptimWrapper); AMP settings ignored: '
              f'{ {k: kwargs[k] for k in _AMP_ONLY_KEYS if k in kwargs} }',
              logger='current')
    return OptimWrapper(**{k: v for k, v in kwargs.items() if k not in _AMP_ONLY_KEYS})
