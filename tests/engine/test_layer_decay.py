"""Layer-wise lr decay: ``get_layer_depth`` of every backbone and
``StepsLayerDecayOptimizerConstructor``, checked against mmdet's and mmseg's
stock ConvNeXt constructors on the shipped configs."""
import os.path as osp
import re

import pytest
import torch.nn as nn
from mmdet.engine.optimizers.layer_decay_optimizer_constructor import \
    LearningRateDecayOptimizerConstructor as MMDetConstructor
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmseg.engine.optimizers.layer_decay_optimizer_constructor import \
    LearningRateDecayOptimizerConstructor as MMSegConstructor

import steps_mm.engine.layer_decay as layer_decay
from conftest import ROOT
from steps_mm.engine import StepsLayerDecayOptimizerConstructor
from steps_mm.models import StepsConvNeXt
from tiny_backbones import CASES, make_input, tiny_backbone

LR, WD = 1e-3, 0.05
OPTIMIZER = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=LR,
                                                      weight_decay=WD))
OUTPUT_NORM = re.compile(r'(norm\d+|ln1)\.')


class Net(nn.Module):
    """A backbone and a head, named as in mmdet / mmseg models."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Conv2d(8, 2, 1)


def build_groups(model, **paramwise_cfg):
    wrapper = StepsLayerDecayOptimizerConstructor(OPTIMIZER, paramwise_cfg)(model)
    return wrapper.optimizer.param_groups


def forward_order(backbone, shape):
    """Parameter names of the backbone in the order forward first uses their
    module (modules called via ``residual`` in the parallel layout use their
    children's order)."""
    order, seen = [], set()
    owners = {m: name for name, m in backbone.named_modules()
              if any(True for _ in m.parameters(recurse=False))}

    def hook(module, args):
        if module not in seen:
            seen.add(module)
            prefix = owners[module] + '.' if owners[module] else ''
            order.extend(prefix + n for n, _ in module.named_parameters(recurse=False))

    handles = [m.register_forward_pre_hook(hook) for m in owners]
    backbone(make_input(shape))
    for h in handles:
        h.remove()
    return order


@pytest.mark.parametrize('family,layout', CASES)
def test_layer_depth_is_monotone_in_forward_order(family, layout):
    backbone, shape = tiny_backbone(family, layout)
    depths = {n: backbone.get_layer_depth(n) for n, _ in backbone.named_parameters()}
    count = {c for _, c in depths.values()}
    assert len(count) == 1
    count = count.pop()
    last = count - 1
    # the last id is exactly the output norms; every other id is used
    assert all((d == last) == bool(OUTPUT_NORM.match(n)) for n, (d, _) in depths.items())
    assert {d for d, _ in depths.values()} >= set(range(last))
    order = [n for n in forward_order(backbone, shape) if depths[n][0] != last]
    assert depths[order[0]][0] == 0
    seq = [depths[n][0] for n in order]
    assert seq == sorted(seq), list(zip(order, seq))
    # names outside the prefix (neck, heads) come last, as mmpretrain's contract
    assert backbone.get_layer_depth('neck.conv.weight', 'backbone.') == (last, count)
    assert backbone.get_layer_depth('backbone.' + order[-1], 'backbone.') == \
        depths[order[-1]]


@pytest.mark.parametrize('family,layout', CASES)
def test_every_trainable_parameter_in_one_group(family, layout):
    backbone, _ = tiny_backbone(family, layout, frozen_stages=1)
    model = Net(backbone)
    for decay_type in ('layer_wise', 'stage_wise'):
        groups = build_groups(model, decay_rate=0.9, decay_type=decay_type)
        grouped = [id(p) for g in groups for p in g['params']]
        trainable = [id(p) for p in model.parameters() if p.requires_grad]
        assert sorted(grouped) == sorted(trainable)
        assert len(trainable) < len(list(model.parameters()))  # something is frozen
        assert max(g['lr'] for g in groups) == pytest.approx(LR)  # the head


@pytest.mark.parametrize('family', ['convnext', 'swin', 'deit'])
def test_lr_decreases_from_head_to_stem(family):
    model = Net(tiny_backbone(family, 'steps')[0])
    lr = {n: g['lr'] for g in build_groups(model, decay_rate=0.8, num_layers=3)
          for n in g['param_names']}
    depth = {n: model.backbone.get_layer_depth(n, 'backbone.')[0] for n in lr}
    by_depth = sorted(lr, key=depth.get)
    assert [lr[n] for n in by_depth] == sorted(lr[n] for n in by_depth)
    assert lr['head.weight'] == pytest.approx(LR)
    assert min(lr.values()) == pytest.approx(LR * 0.8 ** 4)  # the stem: N + 1 steps


def test_steps_convnext_t_takes_the_stock_recipe():
    """Steps-ConvNeXt-T has 32 blocks; the recipe's 6 layers still span ids
    0..7 in forward order."""
    model = Net(StepsConvNeXt('tiny', 'steps', out_indices=(0, 1, 2, 3),
                              gap_before_final_norm=False))
    groups = build_groups(model, decay_rate=0.95, decay_type='layer_wise', num_layers=6)
    ids = {n: int(g['group_name'].split('_')[1]) for g in groups
           for n in g['param_names']}
    assert set(ids.values()) == set(range(8))
    blocks = [f'backbone.stages.{i}.{k}.gamma' for i, stage in
              enumerate(model.backbone.stages) for k in range(len(stage))]
    assert [ids[b] for b in blocks] == sorted(ids[b] for b in blocks)
    assert ids['backbone.downsample_layers.0.0.weight'] == 0
    assert ids['backbone.norm3.weight'] == ids['head.weight'] == 7


def test_no_decay_rules():
    for family in ('swin', 'deit'):
        model = Net(tiny_backbone(family, 'steps')[0])
        wd = {n: g['weight_decay'] for g in build_groups(model, decay_rate=0.9)
              for n in g['param_names']}
        for name, param in model.named_parameters():
            no_decay = (param.ndim == 1 or name.endswith(('.bias', 'pos_embed',
                                                          'cls_token', '_table')))
            assert wd[name] == (0. if no_decay else WD), name
        assert any(n.endswith('relative_position_bias_table') or n.endswith('pos_embed')
                   for n in wd)


def test_custom_keys_longest_match_wins():
    model = Net(tiny_backbone('convnext', 'sequential')[0])
    plain = {n: g for g in build_groups(model, decay_rate=0.9) for n in g['param_names']}
    custom = {n: g for g in build_groups(
        model, decay_rate=0.9, custom_keys={
            'stages': dict(lr_mult=2.), 'stages.0': dict(lr_mult=3., decay_mult=0.),
            'head': dict(lr_mult=10.)}) for n in g['param_names']}
    for name in plain:
        mult = 3. if '.stages.0.' in name else 2. if 'stages' in name else \
            10. if name.startswith('head') else 1.
        assert custom[name]['lr'] == pytest.approx(plain[name]['lr'] * mult), name
        if '.stages.0.' in name:
            assert custom[name]['weight_decay'] == 0.
        else:
            assert custom[name]['weight_decay'] == plain[name]['weight_decay']


def test_bad_config_and_backbone_are_named():
    model = Net(tiny_backbone('convnext', 'steps')[0])
    with pytest.raises(ValueError, match='norm_decay_mult'):
        build_groups(model, decay_rate=0.9, norm_decay_mult=0.)
    with pytest.raises(ValueError, match='decay_type'):
        build_groups(model, decay_rate=0.9, decay_type='layer_wise_vit')
    model.backbone = nn.Conv2d(3, 8, 3)
    with pytest.raises(TypeError, match='get_layer_depth'):
        build_groups(model, decay_rate=0.9)


def test_logs_one_line(monkeypatch):
    lines = []
    monkeypatch.setattr(layer_decay, 'print_log', lambda msg, **kw: lines.append(msg))
    build_groups(Net(tiny_backbone('swin', 'steps', frozen_stages=1)[0]),
                 decay_rate=0.9, num_layers=6)
    assert len(lines) == 1 and '\n' not in lines[0]
    assert re.search(r'\d+ groups, lr scale [\d.e-]+\.\.1, \d+ trained params '
                     r'\(\d+ without weight decay\), [1-9]\d* frozen', lines[0]), lines


# ---- the stock constructors on the shipped sequential ConvNeXt configs ----------
STOCK = [('configs/convnext_maskrcnn.py', MMDetConstructor, 0),
         ('configs/mask-rcnn_convnext-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
          MMDetConstructor, 1),
         ('configs/convnext_upernet.py', MMSegConstructor, 0),
         ('configs/convnext-small_upernet_8xb2-amp-160k_ade20k-512x512.py',
          MMSegConstructor, 2)]


@pytest.mark.parametrize('config,stock,frozen_stages', STOCK)
def test_equals_the_stock_convnext_grouping(config, stock, frozen_stages):
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert cfg.optim_wrapper.constructor == 'StepsLayerDecayOptimizerConstructor'
    assert cfg.model.backbone.layout == 'sequential'
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.update(init_cfg=None, frozen_stages=frozen_stages)
    model = MODELS.build(cfg.model)
    optimizer = dict(type='OptimWrapper', optimizer=cfg.optim_wrapper.optimizer)

    def grouping(constructor, paramwise_cfg):
        params = []
        constructor(optimizer, paramwise_cfg).add_params(params, model)
        return {frozenset(g['param_names']): (g['lr'], g['weight_decay'])
                for g in params}

    ours = {}
    for decay_type in ('layer_wise', 'stage_wise'):  # the recipe's, and the other
        paramwise_cfg = dict(cfg.optim_wrapper.paramwise_cfg, decay_type=decay_type)
        ours[decay_type] = grouping(StepsLayerDecayOptimizerConstructor, paramwise_cfg)
        assert ours[decay_type] == grouping(stock, paramwise_cfg)
    # the config builds our constructor by name in its codebase's scope
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    recipe = ours[cfg.optim_wrapper.paramwise_cfg.decay_type]
    assert {frozenset(g['param_names']): (g['lr'], g['weight_decay'])
            for g in wrapper.optimizer.param_groups} == recipe
