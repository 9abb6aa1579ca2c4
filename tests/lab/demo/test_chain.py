"""The reproduction chain on the built-in data, through the stock entry points
(the demo's ``run_chain``, the ``steps_chain`` fixture): ``mim train mmpretrain``
pretrains Steps-ConvNeXt-T on the ImageNet-format set, ``mim train mmdet`` / ``mmseg``
fine-tune its Mask R-CNN and UperNet from the checkpoint it wrote (the load report
accounts for every backbone parameter), and ``mim test`` evaluates each."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import ROOT
from steps_lab.demo import write_demo_config
from steps_mm.models.pretrained import PretrainedError

REPORT = re.compile(r'load_pretrained (\S+) <- (\S+) .*: matched (\d+)/(\d+) parameters '
                    r'.*; missing (\d+) \[([^\]]*)\]; unexpected (\d+)')


@pytest.mark.slow
def test_pretraining_is_tested(steps_chain):
    run = steps_chain['pretrain']
    assert osp.exists(run.checkpoint) and run.checkpoint.endswith('epoch_2.pth')
    assert 0 <= run.metrics['accuracy/top1'] <= 100


@pytest.mark.slow
@pytest.mark.parametrize('stage, metric', [('det', 'coco/bbox_mAP'), ('seg', 'mIoU')])
def test_fine_tunes_from_the_pretraining_checkpoint(stage, metric, steps_chain):
    pretrained = steps_chain['pretrain'].checkpoint
    with open(osp.join(steps_chain[stage].job_dir, 'train.log')) as f:
        log = f.read()
    reports = REPORT.findall(log)
    assert len(reports) == 1, log[-3000:]
    backbone, source, matched, total, missing, missing_keys, unexpected = reports[0]
    assert backbone == "StepsConvNeXt(layout='steps')" and source == pretrained
    # every parameter of the pretrained backbone is loaded; only the output norms
    # of stages 0-2 (a classifier has the last one only) start fresh
    assert unexpected == '0'
    assert int(missing) == 6 and 'norm0.weight' in missing_keys
    assert int(matched) == int(total) - 6
    # mim test measured the checkpoint the fine-tuning wrote
    assert steps_chain[stage].checkpoint.endswith('iter_2.pth')
    assert steps_chain[stage].metrics[metric] >= 0


@pytest.mark.slow
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
