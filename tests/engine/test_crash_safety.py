"""Crash-safe training (``runner_type='steps_mm.CrashSafeRunner'``, on in every
shipped config): atomic checkpoint writes, SIGKILL then ``--resume``, and resuming
past a truncated last checkpoint (steps_mm/engine/crash_safety.py)."""
import glob
import logging
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import RUNNERS

from steps_mm.engine import crash_safety
from steps_mm.engine.crash_safety import (CrashSafeRunner, find_resumable_checkpoint,
                                          is_complete_checkpoint)

from conftest import ROOT, demo_cfg

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')) +
                 glob.glob(osp.join(ROOT, 'configs', 'imagenet', '*.py')))


def _truncate_copy(src, dst, keep=0.5):
    data = open(src, 'rb').read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.relpath(c, ROOT) for c in CONFIGS])
def test_every_shipped_config_runs_the_crash_safe_runner(config):
    cfg = Config.fromfile(config, import_custom_modules=False)
    # as the stock tools/train.py build it: mmengine's RUNNERS, no default scope
    assert RUNNERS.get(cfg.runner_type) is CrashSafeRunner


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def toy_runner(work_dir, resume=False, iters=4):
    return CrashSafeRunner(
        model=Toy(), work_dir=str(work_dir), resume=resume,
        train_dataloader=dict(
            dataset=[dict(inputs=torch.full((4,), float(i))) for i in range(8)],
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'), batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                           interval=2)),
        log_level='WARNING', experiment_name=f'toy_{time.time_ns()}')


def test_checkpoints_are_written_whole_with_the_usual_mode(tmp_path):
    toy_runner(tmp_path).train()
    umask = os.umask(0o022)
    os.umask(umask)
    for step in (2, 4):
        path = tmp_path / f'iter_{step}.pth'
        assert is_complete_checkpoint(str(path))
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as open() makes it
        assert torch.load(path, weights_only=False)['meta']['iter'] == step
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    runner = toy_runner(tmp_path)
    runner.train()
    old = open(tmp_path / 'iter_4.pth', 'rb').read()

    def disk_full(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', disk_full)
    with pytest.raises(OSError, match='No space'):
        runner.save_checkpoint(str(tmp_path), 'iter_4.pth', by_epoch=False)
    assert open(tmp_path / 'iter_4.pth', 'rb').read() == old
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]


def test_runner_resumes_past_a_truncated_last_checkpoint(tmp_path):
    toy_runner(tmp_path).train()
    _truncate_copy(tmp_path / 'iter_4.pth', tmp_path / 'iter_6.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    runner = toy_runner(tmp_path, resume=True, iters=6)
    runner.train()
    assert runner.iter == 6
    assert torch.load(tmp_path / 'iter_6.pth', weights_only=False)['meta']['iter'] == 6


def test_resume_skips_a_truncated_last_checkpoint(tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr(crash_safety, 'print_log',
                        lambda msg, **kw: messages.append((msg, kw.get('level'))))
    work = str(tmp_path)
    for step in (2, 4):
        torch.save(dict(meta=dict(iter=step), state_dict={'w': torch.ones(100)}),
                   osp.join(work, f'iter_{step}.pth'))
    _truncate_copy(osp.join(work, 'iter_4.pth'), osp.join(work, 'iter_6.pth'))
    pointer = osp.join(work, 'last_checkpoint')

    with open(pointer, 'w') as f:
        f.write(osp.join(work, 'iter_4.pth'))
    assert find_resumable_checkpoint(work) == osp.join(work, 'iter_4.pth')
    assert not messages

    with open(pointer, 'w') as f:
        f.write(osp.join(work, 'iter_6.pth'))
    assert not is_complete_checkpoint(osp.join(work, 'iter_6.pth'))
    assert find_resumable_checkpoint(work) == osp.join(work, 'iter_4.pth')
    (msg, level), = messages
    assert 'iter_6.pth' in msg and 'iter_4.pth' in msg and level == logging.WARNING

    open(pointer, 'w').close()  # a pointer cut short, as a crash could leave it
    assert find_resumable_checkpoint(work) == osp.join(work, 'iter_4.pth')

    for step in (2, 4):
        os.remove(osp.join(work, f'iter_{step}.pth'))
    with open(pointer, 'w') as f:
        f.write(osp.join(work, 'iter_6.pth'))
    with pytest.raises(RuntimeError, match='iter_6.pth'):
        find_resumable_checkpoint(work)


def _train_cmd(config, work_dir, *extra):
    from steps_mm.engine.dist_launch import stock_tool
    return [sys.executable, stock_tool(config, 'train'), config,
            '--work-dir', work_dir, *extra]


@pytest.mark.slow
def test_sigkill_between_checkpoints_then_resume(demo_data, tmp_path):
    """Train 4 iterations with a checkpoint every 2, SIGKILL after iter_2.pth, plant a
    truncated iter_3.pth as the last checkpoint (an older crash), then ``--resume``."""
    work = str(tmp_path)
    cfg = demo_cfg('configs/steps_convnext_maskrcnn.py', demo_data, work, iters=4,
                   batch_size=1)
    cfg.log_level = 'INFO'
    cfg.default_hooks.checkpoint.interval = 2
    cfg.train_cfg.val_interval = 100  # no validation: this test is about resuming
    config = str(tmp_path / 'crash_config.py')
    cfg.dump(config)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    pointer = osp.join(work, 'last_checkpoint')

    with open(tmp_path / 'first.log', 'w') as log:
        proc = subprocess.Popen(_train_cmd(config, work), cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        try:
            while time.time() < deadline and proc.poll() is None:
                if osp.isfile(pointer) and open(pointer).read().endswith('iter_2.pth'):
                    break
                time.sleep(0.05)
            assert proc.poll() is None, open(tmp_path / 'first.log').read()[-3000:]
            assert time.time() < deadline, 'no checkpoint in time'
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert not osp.exists(osp.join(work, 'iter_4.pth'))  # killed between checkpoints
    leftovers = [f for f in os.listdir(work) if f.endswith(('.pth', '.tmp'))]
    assert leftovers == ['iter_2.pth'] and is_complete_checkpoint(
        osp.join(work, 'iter_2.pth'))

    bad = osp.join(work, 'iter_3.pth')
    _truncate_copy(osp.join(work, 'iter_2.pth'), bad, keep=0.9)
    with open(pointer, 'w') as f:
        f.write(bad)
    with open(tmp_path / 'resume.log', 'w') as log:
        done = subprocess.run(_train_cmd(config, work, '--resume'), cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, timeout=240)
    text = open(tmp_path / 'resume.log').read()
    assert done.returncode == 0, text[-3000:]
    assert f'The last checkpoint {bad} is missing or incomplete' in text
    assert f'resuming from the newest complete checkpoint {work}/iter_2.pth' in text
    assert 'resumed epoch: 0, iter: 2' in text
    assert 'Iter(train) [3/4]' in text and 'Iter(train) [2/4]' not in text

    final = torch.load(osp.join(work, 'iter_4.pth'), map_location='cpu',
                       weights_only=False)
    assert final['meta']['iter'] == 4
    # AdamW's step counts and the schedulers' steps went on from the checkpoint
    # (a fresh optimizer or scheduler would count 2 steps, not 4)
    steps = {int(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {4}
    assert [s['_global_step'] for s in final['param_schedulers']] == [4, 4]
