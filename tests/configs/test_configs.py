"""Every shipped config builds through the registries and trains and tests on the
built-in dataset through the real mmengine Runner."""
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from conftest import ROOT, demo_cfg
from fast_lane import FAST_CONFIGS, sampled

CONFIGS = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*.py')))


def test_configs_exist():
    assert 'configs/steps_convnext_maskrcnn.py' in CONFIGS
    assert 'configs/steps_convnext_upernet.py' in CONFIGS


def test_fast_lane_samples_shipped_configs():
    """A misspelt name in the fast lane's sample would quietly move every case of
    its family to the slow lane."""
    shipped = {osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                                  recursive=True)}
    assert FAST_CONFIGS <= shipped, sorted(FAST_CONFIGS - shipped)


@pytest.mark.parametrize('config', sampled(CONFIGS))
def test_config_builds_with_matching_channels(config):
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert cfg.default_scope in ('mmdet', 'mmseg')
    init_default_scope(cfg.default_scope)
    backbone_cfg = cfg.model.backbone
    assert backbone_cfg.type.startswith('Steps'), backbone_cfg.type
    model = MODELS.build(cfg.model)
    backbone = model.backbone
    assert backbone.layout == backbone_cfg.get('layout', 'steps')
    # the neck / head reads exactly the channels the backbone produces
    neck = cfg.model.get('neck') or {}
    reader = neck if 'in_channels' in neck else \
        cfg.model.get('decode_head') or cfg.model.panoptic_head  # Mask2Former
    assert list(reader.in_channels) == backbone.out_channels


DET_CONFIGS = [c for c in CONFIGS if 'rcnn' in c]


@pytest.mark.parametrize('config', sampled(DET_CONFIGS))
def test_detector_roi_heads_pool_the_right_features(config):
    """The RoI heads' RoIAlign (mmcv) reads NCHW memory: on maps with other strides
    it pools wrong values silently, and the detector cannot learn."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    rois = torch.tensor([[0, 4., 10., 60., 50.], [0, 30., 2., 120., 110.]])
    with torch.no_grad():
        extractor = model.roi_head.bbox_roi_extractor
        if isinstance(extractor, torch.nn.ModuleList):  # a cascade: one per stage
            extractor = extractor[0]
        feats = model.neck(model.backbone(torch.randn(1, 3, 128, 128)))
        feats = feats[:extractor.num_inputs]
        dense = [f.clone(memory_format=torch.contiguous_format) for f in feats]
        torch.testing.assert_close(extractor(feats, rois), extractor(dense, rois))


@pytest.mark.slow
def test_every_steps_config_has_a_baseline_twin():
    layouts = {}
    for config in CONFIGS:
        cfg = Config.fromfile(osp.join(ROOT, config))
        b = cfg.model.backbone
        key = (b.type, str(b.get('arch', b.get('depth'))), cfg.default_scope,
               str(cfg.train_cfg.get('max_epochs', cfg.train_cfg.get('max_iters'))))
        layouts.setdefault(key, set()).add(b.get('layout', 'steps'))
    missing = [k for k, v in layouts.items() if v != {'steps', 'sequential'}]
    assert not missing, f'configs without a steps/sequential twin: {missing}'


def head_losses(model) -> list:
    """The losses a training step of ``model`` (a config's) logs for each of its
    heads' stages or decoder layers, beyond the total: every cascade stage's,
    every DINO decoder layer's (mmdet names the last one's without a prefix) and
    its encoder's and denoising queries', every Mask2Former prediction's (the
    queries' own and one per decoder layer)."""
    if model.type == 'CascadeRCNN':
        return [f's{i}.loss_{k}' for i in range(model.roi_head.num_stages)
                for k in ('cls', 'bbox', 'mask')]
    if model.type == 'DINO':
        return [f'{p}loss_{k}' for p in [f'd{i}.' for i in range(
            model.decoder.num_layers - 1)] + ['', 'enc_', 'dn_']
            for k in ('cls', 'bbox', 'iou')]
    head = model.get('panoptic_head') or model.get('decode_head') or {}
    if 'transformer_decoder' in head:  # Mask2Former: mmseg prefixes 'decode.'
        prefix = 'decode.' if 'decode_head' in model else ''
        return [f'{prefix}{p}loss_{k}' for p in [f'd{i}.' for i in range(
            head.transformer_decoder.num_layers)] + [''] for k in ('cls', 'mask', 'dice')]
    if 'roi_head' in model:
        return ['loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask']
    return ['decode.loss_ce']


def check_metrics(cfg, metrics):
    """The test's metrics exist and are in range: COCO AP of each of the
    evaluator's metrics (box, mask) in [0, 1], mIoU in [0, 100]."""
    if cfg.default_scope == 'mmseg':
        assert 0 <= metrics['mIoU'] <= 100
        return
    kinds = cfg.test_evaluator.metric
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        assert 0 <= metrics[f'coco/{kind}_mAP'] <= 1, (kind, metrics)
        assert 0 <= metrics[f'coco/{kind}_mAP_50'] <= 1, (kind, metrics)


@pytest.mark.slow  # the Runner on every shipped config, full-size models
@pytest.mark.parametrize('config', CONFIGS)
def test_config_trains_and_tests_on_builtin_data(config, demo_data, tmp_path):
    cfg = demo_cfg(config, demo_data, tmp_path, iters=2)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # test once, below
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    losses = hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    # every head, stage and decoder layer is trained, with a finite loss
    for name in head_losses(cfg.model):
        values = hub.get_scalar(f'train/{name}').data[0]
        assert len(values) == 2 and all(torch.isfinite(torch.tensor(values))), name
    assert osp.exists(osp.join(str(tmp_path), 'iter_2.pth'))
    check_metrics(cfg, runner.test())
    # ~0.5 GB each, 28 configs: pytest keeps the tmp dirs of its last three runs.
    # (The dir itself stays: mmengine's global visualizer keeps writing into the
    # first runner's work dir.)
    os.remove(osp.join(str(tmp_path), 'iter_2.pth'))
