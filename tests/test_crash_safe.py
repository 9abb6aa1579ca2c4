"""Crash-safe training: atomic checkpoint writes, SIGKILL then ``--resume``, and
resuming past a truncated last checkpoint (steps_mm/engine/crash_safety.py)."""
import logging
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

import steps_mm  # noqa: F401  (enables crash safety)
from steps_mm.engine import crash_safety
from steps_mm.engine.crash_safety import (AtomicLocalBackend, find_resumable_checkpoint,
                                          is_complete_checkpoint)

from conftest import ROOT, demo_cfg


def _truncate_copy(src, dst, keep=0.5):
    data = open(src, 'rb').read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def test_steps_mm_enables_atomic_backend_and_checked_resume():
    from mmengine.fileio import get_file_backend
    from mmengine.runner import runner
    assert isinstance(get_file_backend('/some/work_dir/iter_1.pth'), AtomicLocalBackend)
    assert getattr(runner.find_latest_checkpoint, '_steps_mm', False)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'iter_2.pth')
    backend = AtomicLocalBackend()
    backend.put(b'old checkpoint', path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as open() would make it

    def disk_full(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', disk_full)
    with pytest.raises(OSError):
        backend.put(b'new checkpoint, cut short', path)
    assert open(path, 'rb').read() == b'old checkpoint'
    assert os.listdir(tmp_path) == ['iter_2.pth']  # no temporary file left behind


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
