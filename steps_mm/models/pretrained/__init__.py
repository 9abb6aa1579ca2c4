"""Pretrained weights that fail loudly: the checked loader (``loader``), the
key maps of checkpoints (``key_schemes``) and weight selection from a twin's
checkpoint (``selection``). This package re-exports the loader's public API."""
from .loader import (LoadReport, PretrainedError, check_exists, init_pretrained,
                     load_pretrained, match_state_dict, pretrained_cfg,
                     read_checkpoint, source_state_dict)

__all__ = ['LoadReport', 'PretrainedError', 'check_exists', 'init_pretrained',
           'load_pretrained', 'match_state_dict', 'pretrained_cfg',
           'read_checkpoint', 'source_state_dict']
