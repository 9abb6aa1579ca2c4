"""The reproduction chain on the built-in data, through the stock entry points:
``mim train mmpretrain`` pretrains Steps-ConvNeXt-T on the ImageNet-format set,
``mim train mmdet`` / ``mmseg`` fine-tune its Mask R-CNN and UperNet from the
checkpoint it wrote (the load report accounts for every backbone parameter), and
``mim test`` evaluates each."""
import glob
import json
import os.path as osp
import re
import subprocess

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import ROOT
from steps_mm.demo import (build_classification_dataset, write_demo_config,
                           write_pretrain_config)
from steps_mm.models.pretrained import PretrainedError

PRETRAIN = osp.join(ROOT, 'configs', 'imagenet', 'steps-convnext-tiny_32xb128_in1k.py')
REPORT = re.compile(r'load_pretrained (\S+) <- (\S+) .*: matched (\d+)/(\d+) parameters '
                    r'.*; missing (\d+) \[([^\]]*)\]; unexpected (\d+)')


def mim(*args, cwd=ROOT) -> str:
    out = subprocess.run(['mim', *map(str, args)], capture_output=True, text=True,
                         cwd=cwd, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def dumped_metrics(work_dir) -> dict:
    files = glob.glob(osp.join(str(work_dir), '*', '*.json'))
    assert files, f'no metrics under {work_dir}'
    return json.load(open(files[0]))


@pytest.fixture(scope='module')
def pretrained(demo_data, tmp_path_factory):
    """The checkpoint of a 2-epoch ``mim train mmpretrain`` run (and its test)."""
    root = tmp_path_factory.mktemp('pretrain')
    build_classification_dataset(demo_data, num_train=8, num_val=4, size=64)
    cfg = write_pretrain_config(PRETRAIN, demo_data, root / 'config.py', epochs=2,
                                size=64, batch_size=8)
    mim('train', 'mmpretrain', cfg, '--work-dir', root / 'train')
    checkpoint = root / 'train' / 'epoch_2.pth'
    assert checkpoint.exists()
    mim('test', 'mmpretrain', cfg, '--checkpoint', checkpoint, '--work-dir',
        root / 'test')
    top1 = dumped_metrics(root / 'test')['accuracy/top1']
    assert 0 <= top1 <= 100
    return checkpoint


@pytest.mark.slow  # mim train / test subprocess chains
@pytest.mark.parametrize('config, codebase, metric', [
    ('steps_convnext_maskrcnn.py', 'mmdet', 'coco/bbox_mAP'),
    ('steps_convnext_upernet.py', 'mmseg', 'mIoU')])
def test_fine_tunes_from_the_pretraining_checkpoint(config, codebase, metric,
                                                     pretrained, demo_data, tmp_path):
    cfg = write_demo_config(osp.join(ROOT, 'configs', config), demo_data,
                            tmp_path / 'config.py', iters=2, size=128,
                            backbone_checkpoint=str(pretrained))
    log = mim('train', codebase, cfg, '--work-dir', tmp_path / 'train')
    reports = REPORT.findall(log)
    assert len(reports) == 1, log[-3000:]
    backbone, source, matched, total, missing, missing_keys, unexpected = reports[0]
    assert backbone == "StepsConvNeXt(layout='steps')" and source == str(pretrained)
    # every parameter of the pretrained backbone is loaded; only the output norms
    # of stages 0-2 (a classifier has the last one only) start fresh
    assert unexpected == '0'
    assert int(missing) == 6 and 'norm0.weight' in missing_keys
    assert int(matched) == int(total) - 6
    mim('test', codebase, cfg, '--checkpoint', tmp_path / 'train' / 'iter_2.pth',
        '--work-dir', tmp_path / 'test')
    assert dumped_metrics(tmp_path / 'test')[metric] >= 0


def test_training_stops_before_the_first_iteration_without_the_checkpoint(
        demo_data, tmp_path):
    cfg = Config.fromfile(write_demo_config(
        osp.join(ROOT, 'configs', 'steps_convnext_upernet.py'), demo_data,
        tmp_path / 'config.py', iters=2, size=128))
    cfg.work_dir = str(tmp_path)
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'absent' / 'epoch_300.pth')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(PretrainedError, match='mim train mmpretrain configs/imagenet/'
                                              'steps-convnext-tiny_32xb128_in1k.py'):
        runner.train()
    assert runner.iter == 0
    assert not glob.glob(str(tmp_path / '*.pth'))
