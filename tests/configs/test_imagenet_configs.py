"""The ImageNet-1K pretraining configs (configs/imagenet/): one per model of the
paper's Table 1 and per ConvNeXt-T/S/B, Steps and baseline, each the stock
mmpretrain recipe with only the backbone swapped, built through mmpretrain's
registry; and the det/seg configs that fine-tune from what they write."""
import glob
import inspect
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import init_default_scope

from conftest import ROOT
from fast_lane import sampled

IMAGENET = sorted(glob.glob(osp.join(ROOT, 'configs', 'imagenet', '*.py')))
NAMES = [osp.basename(p)[:-3] for p in IMAGENET]
DET_SEG = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')))
# the backbone keys a Steps backbone forces on the recipe (the output it needs)
OUTPUT_KEYS = {'layout', 'out_indices', 'gap_before_final_norm', 'out_type', 'type'}


def without_scope(obj):
    """A config dict without the ``_scope_`` keys mmengine adds to ``pkg::`` bases."""
    if isinstance(obj, dict):
        return {k: without_scope(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(without_scope(v) for v in obj)
    return obj


def stock_base(cfg_path: str) -> str:
    match = re.search(r"_base_ = 'mmpretrain::([^']+)'", open(cfg_path).read())
    assert match, f'{cfg_path} does not inherit a stock mmpretrain recipe'
    return match.group(1)


def test_one_config_per_model_steps_and_baseline():
    models = ['resnet18', 'resnet34', 'resnet50', 'deit-tiny', 'deit-small', 'deit-base',
              'swin-tiny', 'swin-small', 'swin-base', 'convnext-tiny', 'convnext-small',
              'convnext-base']
    found = {re.sub(r'_.*', '', n) for n in NAMES}
    assert found == set(models) | {f'steps-{m}' for m in models}
    assert len(NAMES) == 24


@pytest.mark.parametrize('path', sampled(IMAGENET, ids=NAMES))
def test_only_the_backbone_differs_from_the_stock_recipe(path):
    ours = without_scope(Config.fromfile(path).to_dict())
    stock = without_scope(get_config(f'mmpretrain::{stock_base(path)}').to_dict())
    assert ours['default_scope'] == 'mmpretrain'
    assert ours.pop('custom_imports') == dict(imports=['steps_mm.pretraining'],
                                              allow_failed_imports=False)
    assert ours.pop('runner_type') == 'steps_mm.CrashSafeRunner'
    ours_backbone, stock_backbone = ours['model'].pop('backbone'), \
        stock['model'].pop('backbone')
    assert ours == stock  # data, schedule, head, neck, hooks, runtime
    layout = 'steps' if osp.basename(path).startswith('steps-') else 'sequential'
    assert ours_backbone['layout'] == layout
    # the recipe's architecture and regularisation, wherever our backbone takes
    # the same argument (Swin's img_size sizes an absolute position embedding
    # the recipe does not use; ours has none)
    from steps_mm.registry import MODELS
    takes = inspect.signature(MODELS.get(ours_backbone['type'])).parameters
    shared = [k for k in stock_backbone if k in takes and k not in OUTPUT_KEYS]
    assert {'arch', 'depth'} & set(shared)
    for key in shared:
        assert ours_backbone.get(key) == stock_backbone[key], key
    extra = set(ours_backbone) - set(stock_backbone) - OUTPUT_KEYS
    assert not extra, f'keys beyond the recipe and the output it needs: {extra}'


@pytest.mark.parametrize('path', sampled(IMAGENET, ids=NAMES))
def test_builds_through_mmpretrain_and_gives_1000_logits(path):
    cfg = Config.fromfile(path)  # imports steps_mm.pretraining (custom_imports)
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model).eval()
    assert type(model).__name__ == 'ImageClassifier'
    assert type(model.backbone).__name__ == cfg.model.backbone.type
    assert model.backbone.layout == cfg.model.backbone.layout
    size = 64 if 'swin' not in path else 56  # Swin: a multiple of 4 * window 7 * 2
    with torch.no_grad():
        logits = model(torch.randn(2, 3, size, size), mode='tensor')
    assert logits.shape == (2, 1000)
    assert torch.isfinite(logits).all()


def imagenet_checkpoint(pretrain_config: str) -> str:
    """Where ``mim train mmpretrain PRETRAIN_CONFIG`` writes its last checkpoint."""
    cfg = Config.fromfile(osp.join(ROOT, pretrain_config))
    name = osp.basename(pretrain_config)[:-3]
    return f'work_dirs/{name}/epoch_{cfg.train_cfg.max_epochs}.pth'


@pytest.mark.parametrize('path', sampled(DET_SEG, ids=[osp.basename(p) for p in DET_SEG]))
def test_det_seg_configs_fine_tune_from_their_imagenet_config(path):
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    init = backbone.init_cfg
    assert init.type == 'Pretrained'
    pretrain = Config.fromfile(osp.join(ROOT, init.pretrain_config))
    ours = pretrain.model.backbone
    # the same model, pretrained in the same layout
    assert ours.type == backbone.type
    assert ours.layout == backbone.get('layout', 'steps')
    assert ours.get('arch', ours.get('depth')) == \
        backbone.get('arch', backbone.get('depth'))
    if backbone.get('layout', 'steps') == 'steps':  # loads its own ImageNet run
        assert init.checkpoint == imagenet_checkpoint(init.pretrain_config)
        assert init.prefix == 'backbone.'
    else:  # the stock ImageNet weights by default
        assert init.checkpoint.startswith('https://'), init.checkpoint


def test_missing_imagenet_checkpoint_names_the_command_and_the_switch(tmp_path):
    from mmengine.registry import MODELS

    from steps_mm.models.pretrained import PretrainedError
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'steps_convnext_upernet.py'))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    with pytest.raises(PretrainedError) as error:
        model.init_weights()
    message = str(error.value)
    assert 'work_dirs/steps-convnext-tiny_32xb128_in1k/epoch_300.pth does not exist' \
        in message
    assert '`mim train mmpretrain configs/imagenet/steps-convnext-tiny_32xb128_in1k.py`' \
        in message
    assert '--cfg-options model.backbone.init_cfg=None' in message


def test_models_are_built_as_the_runner_builds_them():
    """The recipe's top-level data_preprocessor (Mixup/CutMix's num_classes) is
    merged into the model, so a training step with the recipe's augments runs."""
    from steps_mm.analysis.gpu_hours import training_run
    run = training_run(osp.join(ROOT, 'configs', 'imagenet',
                                'deit-tiny_4xb256_in1k.py'), batch=2)
    assert run.model.data_preprocessor.num_classes == 1000
    assert run.model.data_preprocessor.batch_augments is not None
    losses = run.step()
    assert torch.isfinite(losses['loss'])


# a Steps config and its baseline of every family (the smallest arch of each)
GPU_HOURS_CONFIGS = [osp.join(ROOT, 'configs', 'imagenet', f'{prefix}{name}.py')
                     for name in ('resnet18_8xb32_in1k', 'deit-tiny_4xb256_in1k',
                                  'swin-tiny_16xb64_in1k', 'convnext-tiny_32xb128_in1k')
                     for prefix in ('steps-', '')]


@pytest.mark.slow
def test_gpu_hours_tool_times_the_recipes_training_step(tmp_path):
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'gpu_hours.py'), *GPU_HOURS_CONFIGS,
         '--batch', '2', '--steps', '1', '--warmup', '0', '--out', str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.load(open(tmp_path / 'gpu_hours.json'))
    assert [r['config'] for r in rows] == [osp.relpath(c, ROOT) for c in GPU_HOURS_CONFIGS]
    for row in rows:
        epochs = 100 if 'resnet' in row['config'] else 300  # the recipe's schedule
        assert row['batch'] == 2 and row['schedule'] == f'{epochs} epochs'
        assert row['images'] == epochs * 1_281_167 and row['shape'] == [224, 224]
        assert row['images_per_second'] > 0
        assert row['device_hours'] == pytest.approx(
            epochs * 1_281_167 / row['images_per_second'] / 3600)
    assert '| resnet18_8xb32_in1k.py | 2 |' in out.stdout
