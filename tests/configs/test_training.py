"""Real training of the two main configs through the mmengine Runner and the stock
mim/tools entry points: loss, metrics, checkpoints, resume, test from a checkpoint."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.hooks import Hook
from mmengine.runner import Runner

from conftest import ROOT, demo_cfg

CASES = [('configs/steps_convnext_maskrcnn.py', 'mmdet', 'coco/bbox_mAP'),
         ('configs/steps_convnext_upernet.py', 'mmseg', 'mIoU')]


class RecordStart(Hook):
    """Records where training starts and the optimizer's step count there."""

    def before_train(self, runner):
        self.iter = runner.iter
        state = runner.optim_wrapper.optimizer.state
        self.adam_steps = {int(s['step']) for s in state.values() if 'step' in s}


@pytest.mark.slow  # mim train / test subprocess chains
@pytest.mark.parametrize('config, codebase, metric', CASES)
def test_train_resume_and_test_with_stock_tools(config, codebase, metric, demo_data,
                                                tmp_path):
    cfg = demo_cfg(config, demo_data, tmp_path, iters=8)
    cfg.default_hooks.checkpoint.interval = 4
    cfg.train_cfg.val_begin = 1  # the demo's configs skip it; the Runner's loop runs it
    runner = Runner.from_cfg(cfg)
    runner.train()

    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 8 and all(map(lambda v: v == v and abs(v) < 1e4, losses))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses  # it learns
    val = {k: v for k, v in runner.message_hub.log_scalars.items()
           if k.startswith('val/')}
    assert f'val/{metric}' in val
    for it in (4, 8):
        assert osp.exists(osp.join(str(tmp_path), f'iter_{it}.pth'))

    # resume from the middle checkpoint: continues at iteration 4 with the optimizer
    # state of iteration 4 (the checkpoint holds numpy/mmengine types that torch's
    # weights_only loader reads because steps_mm allows them)
    resumed_cfg = demo_cfg(config, demo_data, tmp_path / 'resumed', iters=6)
    resumed_cfg.resume = True
    resumed_cfg.load_from = osp.join(str(tmp_path), 'iter_4.pth')
    resumed_cfg.val_cfg = resumed_cfg.val_dataloader = resumed_cfg.val_evaluator = None
    resumed = Runner.from_cfg(resumed_cfg)
    start = RecordStart()
    resumed.register_hook(start)
    resumed.train()
    assert start.iter == 4
    assert start.adam_steps == {4}
    assert resumed.iter == 6

    # the stock test tool (mim -> mmdet/mmseg tools/test.py) with the checkpoint
    out = subprocess.run(
        [sys.executable, '-m', 'mim', 'test', codebase, osp.join(str(tmp_path), 'config.py'), '--checkpoint',
         osp.join(str(tmp_path), 'iter_8.pth'), '--work-dir', str(tmp_path / 'test')],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    dumped = glob.glob(str(tmp_path / 'test' / '*' / '*.json'))
    assert dumped, out.stdout[-2000:]
    metrics = json.load(open(dumped[0]))
    assert metric in metrics and metrics[metric] >= 0
