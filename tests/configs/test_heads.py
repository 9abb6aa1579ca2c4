"""The det/seg heads beyond Mask R-CNN and UperNet: Cascade Mask R-CNN, DINO,
Mask2Former (ADE20K and COCO) and Mask R-CNN through a simple feature pyramid.
Every config of them also goes through tests/configs/test_configs.py (builds,
RoI pooling, the Runner on the built-in data with every head's losses)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import ROOT, demo_cfg
from steps_lab.results import twins

PATTERNS = ('cascade-mask-rcnn_*', 'dino-*', 'mask2former_*', '*_simple-fpn_*')
HEAD_CONFIGS = sorted({osp.basename(p) for pattern in PATTERNS
                       for p in glob.glob(osp.join(ROOT, 'configs', pattern + '.py'))})
STEPS_CONFIGS = [c for c in HEAD_CONFIGS if 'steps-' in c]


def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs', name), import_custom_modules=False)


def test_every_head_config_is_a_steps_config_or_its_twin():
    assert len(STEPS_CONFIGS) == 8 and len(HEAD_CONFIGS) == 16, HEAD_CONFIGS
    assert {c.replace('steps-', '') for c in STEPS_CONFIGS} == \
        set(HEAD_CONFIGS) - set(STEPS_CONFIGS)


def test_each_twin_differs_only_in_the_backbone():
    """The results tool's twin rule: the resolved configs are equal but for the
    backbone's layout, outputs and pretrained weights (the baseline loads the stock
    ImageNet weights, the Steps model its own pretraining), recipe included."""
    for name in STEPS_CONFIGS:
        steps, twin = load(name), load(name.replace('steps-', ''))
        assert (twins.layout(steps), twins.layout(twin)) == ('steps', 'sequential'), name
        assert twins.model_key(steps) == twins.model_key(twin), name
        assert twins.differences(steps, twin) == [
            'backbone initialisation (own pretraining vs stock weights)'], name
        assert twins.pair([name, 'twin'], {name: steps, 'twin': twin}.get) == \
            ([(name, 'twin')], [])


def test_a_short_mask2former_run_learns(demo_data, tmp_path):
    """The Runner on the built-in data (ADE20K-style, 128 px): three iterations of
    Mask2Former with Steps-ResNet-50 from scratch lower its loss at every step,
    and the test's mIoU is in range (the one head run of the fast lane; the
    slow lane runs every config)."""
    cfg = demo_cfg('configs/mask2former_steps-r50_8xb2-160k_ade20k-512x512.py',
                   demo_data, tmp_path, iters=3)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    # the mask losses at 32x32 points (the masks' own resolution at 128 px), not
    # the recipe's 112x112: half the time
    cfg.model.decode_head.train_cfg.num_points = 32 * 32
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2], losses
    # the last decoder layer's class loss is one of the 30 terms; all are finite
    assert torch.isfinite(torch.tensor(
        runner.message_hub.get_scalar('train/decode.loss_cls').data[0])).all()
    metrics = runner.test()
    assert 0 <= metrics['mIoU'] <= 100 and 0 < metrics['aAcc'] <= 100


@pytest.mark.parametrize('name', ['mask-rcnn_steps-deit-s16_simple-fpn_rpn-2conv_4conv1fc_'
                                  'syncbn-all_amp-lsj-100e_coco.py'])
def test_vit_detector_uses_the_simple_pyramid(name):
    """Steps-DeiT-S's one stride-16 map feeds the neck, which gives the RPN and
    RoI heads FPN's five levels; the position embedding is made for the 1024x1024
    training images."""
    from steps_mm.analysis.configs import build_model
    from steps_mm.models import SimpleFeaturePyramid
    model = build_model(load(name), pretrained=False).eval()
    assert isinstance(model.neck, SimpleFeaturePyramid)
    assert model.backbone.grid == (64, 64)
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, 96, 160))
    assert [f.shape[-2:] for f in feats] == [(24, 40), (12, 20), (6, 10), (3, 5), (2, 3)]
    assert model.roi_head.bbox_roi_extractor.featmap_strides == [4, 8, 16, 32]


def test_gpu_hours_knows_the_head_recipes_schedules_and_sizes():
    """What tools/gpu_hours.py multiplies the measured throughput by: the images
    each recipe's schedule processes, and the size it trains at."""
    from steps_mm.analysis.gpu_hours import schedule_images, train_shape
    expected = {  # config: (images, schedule, (H, W))
        'cascade-mask-rcnn_steps-swin-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py':
            (36 * 117_266, '36 epochs of 117,266', (800, 1333)),
        # DINO keeps the images without annotations
        'dino-4scale_steps-r50_8xb2-12e_coco.py':
            (12 * 118_287, '12 epochs of 118,287', (800, 1333)),
        'mask2former_steps-r50_8xb2-160k_ade20k-512x512.py':
            (160_000 * 16, '160,000 iterations x 16', (512, 512)),
        'mask2former_steps-swin-t-p4-w7-224_8xb2-lsj-50e_coco.py':
            (368_750 * 16, '368,750 iterations x 16', (1024, 1024)),
        # 25 epochs of a 4x RepeatDataset
        'mask-rcnn_steps-deit-s16_simple-fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py':
            (100 * 117_266, '100 epochs of 117,266', (1024, 1024)),
    }
    for name, (images, schedule, shape) in expected.items():
        cfg = load(name)
        scope = cfg.default_scope
        assert schedule_images(cfg, scope) == (images, schedule), name
        assert train_shape(cfg, scope) == shape, name


@pytest.mark.slow  # full training steps of two detectors
def test_gpu_hours_times_a_detector_pair(tmp_path):
    import json
    import subprocess
    import sys
    configs = [osp.join(ROOT, 'configs', c) for c in (
        'dino-4scale_steps-r50_8xb2-12e_coco.py', 'dino-4scale_r50_8xb2-12e_coco.py')]
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'gpu_hours.py'), *configs, '--batch', '1',
         '--shape', '256', '320', '--steps', '1', '--warmup', '0', '--out', str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.load(open(tmp_path / 'gpu_hours.json'))
    assert [r['config'] for r in rows] == [osp.relpath(c, ROOT) for c in configs]
    for row in rows:
        assert row['shape'] == [256, 320] and row['batch'] == 1
        assert row['schedule'] == '12 epochs of 118,287'
        assert row['device_hours'] == pytest.approx(
            12 * 118_287 / row['images_per_second'] / 3600)
    assert '| dino-4scale_steps-r50_8xb2-12e_coco.py | 1 | 256x320 |' in out.stdout
