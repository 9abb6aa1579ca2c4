"""Layer-wise learning-rate decay for every Steps backbone."""
import math
from typing import List, Optional

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from ..registry import register

#: parameters that never get weight decay, besides 1-D ones (norms, layer scales)
#: and biases
NO_DECAY_NAMES = ('pos_embed', 'absolute_pos_embed', 'cls_token', 'mask_token',
                  'relative_position_bias_table')
DECAY_TYPES = ('layer_wise', 'stage_wise')


@register('OPTIM_WRAPPER_CONSTRUCTORS')
class StepsLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """mmdet's / mmseg's ``LearningRateDecayOptimizerConstructor`` for every
    Steps backbone, with the same ``paramwise_cfg``.

    Every trainable parameter gets ``lr = base_lr * decay_rate ** (N + 1 - id)``
    where ``N = num_layers`` and ``id`` in ``0..N+1`` is its layer id:

    * ``decay_type='layer_wise'``: the backbone's ``get_layer_depth`` counts the
      stem 0, its ``B`` blocks ``1..B`` in forward order (downsampling with the
      block after it) and output norms, neck and heads ``B + 1``. Block depths are
      scaled to the recipe's layer count, ``id = ceil(depth * N / B)``, and the
      last depth becomes ``N + 1``. This keeps ids monotone for any number of
      blocks, so a Steps model with more blocks than the baseline takes the
      baseline's recipe unchanged; for the sequential ConvNeXt-T/S (``N`` = 6/12,
      stages of 3 blocks outside stage 3) it is exactly the stock grouping.
    * ``decay_type='stage_wise'``: as the official ConvNeXt recipe, stem and
      downsampling 0, the blocks of stage ``i`` at ``i + 1``, the rest ``N + 1``.

    Without ``num_layers``, ``N`` is ``B`` (layer-wise) or the number of stages.
    Parameters with ``requires_grad=False`` (``frozen_stages``) are left out.
    1-D parameters (norms, layer scales), biases and position embeddings, class
    tokens and relative position tables get no weight decay. ``custom_keys`` work
    as in mmengine's ``DefaultOptimWrapperConstructor``: the longest key that is a
    substring of the parameter name multiplies its lr by ``lr_mult`` and its
    weight decay by ``decay_mult``.
    """

    keys = ('num_layers', 'decay_rate', 'decay_type', 'custom_keys')

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        cfg = self.paramwise_cfg
        unknown = sorted(set(cfg) - set(self.keys))
        if unknown:
            raise ValueError(f'{type(self).__name__}: unsupported paramwise_cfg keys '
                             f'{unknown}; supported: {list(self.keys)}')
        if 'decay_rate' not in cfg:
            raise ValueError(f'{type(self).__name__}: paramwise_cfg needs decay_rate')
        if cfg.get('decay_type', 'layer_wise') not in DECAY_TYPES:
            raise ValueError(f'{type(self).__name__}: decay_type must be one of '
                             f'{DECAY_TYPES}, got {cfg["decay_type"]!r}')

    def layer_id(self, backbone: nn.Module, name: str, prefix: str) -> tuple:
        """``(id, N)``: the id in ``0..N+1`` of parameter ``name`` (of the whole
        model) and the recipe's ``N``."""
        stage_wise = self.paramwise_cfg.get('decay_type') == 'stage_wise'
        depth_of = backbone.get_stage_depth if stage_wise else backbone.get_layer_depth
        depth, count = depth_of(name, prefix)
        last = count - 1  # output norms, neck, heads
        n = self.paramwise_cfg.get('num_layers', last - 1)
        if depth == last:
            return n + 1, n
        return (depth if stage_wise
                else math.ceil(depth * n / max(last - 1, 1))), n

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        backbone = getattr(module, 'backbone', module)
        prefix = '' if backbone is module else 'backbone.'
        if not hasattr(backbone, 'get_layer_depth'):
            raise TypeError(f'{type(self).__name__} needs a backbone with '
                            f'get_layer_depth (a Steps backbone), got '
                            f'{type(backbone).__name__}')
        cfg = self.paramwise_cfg
        custom_keys = cfg.get('custom_keys', {})
        # mmengine's order: the longest key first, ties alphabetically
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)
        groups, frozen, no_decay = {}, 0, 0
        for name, param in module.named_parameters():
            if not param.requires_grad:
                frozen += 1
                continue
            layer, n = self.layer_id(backbone, name, prefix)
            decay = not (param.ndim <= 1 or name.endswith('.bias')
                         or name.rsplit('.', 1)[-1] in NO_DECAY_NAMES)
            no_decay += not decay
            key = next((k for k in sorted_keys if k in name), None)
            group_name = f'layer_{layer}_{"decay" if decay else "no_decay"}' + (
                f'_{key}' if key else '')
            if group_name not in groups:
                scale = cfg['decay_rate'] ** (n + 1 - layer)
                custom = custom_keys.get(key, {})
                groups[group_name] = {
                    **custom, 'group_name': group_name, 'lr_scale': scale,
                    'lr': self.base_lr * scale * custom.get('lr_mult', 1.),
                    'weight_decay': (self.base_wd or 0.) * decay
                    * custom.get('decay_mult', 1.),
                    'params': [], 'param_names': []}
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)
        scales = [g['lr_scale'] for g in groups.values()]
        trained = sum(len(g['params']) for g in groups.values())
        print_log(f'{type(self).__name__}: {cfg.get("decay_type", "layer_wise")} '
                  f'decay {cfg["decay_rate"]}, {len(groups)} groups, lr scale '
                  f'{min(scales, default=1):.4g}..{max(scales, default=1):.4g}, '
                  f'{trained} trained params ({no_decay} without weight decay), '
                  f'{frozen} frozen', logger='current')
        params.extend(groups.values())
