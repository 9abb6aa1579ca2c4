"""Distributed training on the CPU: gloo, torchrun and the stock tools.

* 2 processes x batch 1 give the gradients of 1 process x batch 2. The model is
  Steps-ConvNeXt-T: its norms are LayerNorms, which normalise each sample on its own,
  so the only coupling between samples is the loss mean, which DDP's gradient average
  reproduces. (A BN model would differ: per-process batch statistics; SyncBN would
  fix that but torch syncs them on GPUs only.) Drop path is off.
* ``tools/dist_train.sh`` trains and evaluates the shipped Mask R-CNN config on the
  built-in data with 2 processes, then ``tools/dist_test.sh`` tests the checkpoint.
"""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import ROOT, demo_cfg

# measured: max abs 1.5e-8, 4e-7 of the largest gradient (float32 sums in another order)
ATOL, RTOL = 1e-6, 1e-4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _model():
    from steps_mm.models import StepsConvNeXt
    torch.manual_seed(0)
    model = StepsConvNeXt(arch='tiny', layout='steps', out_indices=[0, 1, 2, 3],
                          drop_path_rate=0., layer_scale_init_value=1.0,
                          gap_before_final_norm=False)
    model.init_weights()
    return model


def _inputs():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _loss(outs):
    # a mean over the batch: the per-process means average to the global mean
    return sum((o.float() ** 2).mean() for o in outs)


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()
            if p.grad is not None}


def _worker(rank, world_size, port, out_file):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        model = torch.nn.parallel.DistributedDataParallel(_model())
        x = _inputs()[rank:rank + 1]
        _loss(model(x)).backward()
        if rank == 0:
            torch.save(_grads(model.module), out_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes
def test_two_processes_match_one_process_gradients(tmp_path):
    out_file = str(tmp_path / 'grads.pth')
    mp.spawn(_worker, args=(2, _free_port(), out_file), nprocs=2, join=True)
    distributed = torch.load(out_file)

    model = _model()
    _loss(model(_inputs())).backward()
    single = _grads(model)

    assert distributed.keys() == single.keys() and len(single) > 100
    max_abs = max((distributed[k] - single[k]).abs().max().item() for k in single)
    scale = max(single[k].abs().max().item() for k in single)
    print(f'1 vs 2 processes: max abs grad difference {max_abs:.3g}, '
          f'relative to the largest gradient {max_abs / scale:.3g}')
    for name, grad in single.items():
        torch.testing.assert_close(distributed[name], grad, atol=ATOL, rtol=RTOL,
                                   msg=name)


def _os_threads() -> int:
    return len(os.listdir('/proc/self/task'))


def _close_worker(rank, world_size, port, out_file):
    from steps_mm.engine.dist_launch import close_process_group
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    before = _os_threads()
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    with_group = _os_threads()

    class Runner:  # as mmengine's runner: its DDP model in a reference cycle
        pass
    runner = Runner()
    runner.runner = runner
    runner.model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 4))
    runner.model(torch.randn(2, 4)).sum().backward()
    # a last collective, as the evaluator's broadcast of the metrics
    dist.broadcast_object_list([{'bbox_mAP': 0.5} if rank == 0 else None], src=0)
    del runner
    close_process_group()
    if rank == 0:
        torch.save(dict(before=before, with_group=with_group, after=_os_threads()),
                   out_file)


@pytest.mark.slow  # two spawned processes
@pytest.mark.skipif(not osp.isdir('/proc/self/task'), reason='counts threads in /proc')
def test_closing_the_group_joins_gloo_threads_held_by_a_runner_cycle(tmp_path):
    # left to interpreter exit, those threads aborted finished runs (SIGABRT)
    out_file = str(tmp_path / 'threads.pth')
    mp.spawn(_close_worker, args=(2, _free_port(), out_file), nprocs=2, join=True)
    threads = torch.load(out_file)
    assert threads['with_group'] > threads['before'], threads  # gloo's own threads
    assert threads['after'] == threads['before'], threads


def test_dist_scripts_pick_the_stock_tool_of_the_config():
    from steps_mm.engine.dist_launch import stock_tool
    for config, package in (('steps_convnext_maskrcnn.py', 'mmdet'),
                            ('steps_convnext_upernet.py', 'mmseg')):
        for tool in ('train', 'test'):
            path = stock_tool(osp.join(ROOT, 'configs', config), tool)
            assert path.endswith(osp.join(package, '.mim', 'tools', f'{tool}.py'))
            assert osp.isfile(path)


def _run(cmd, log_file, port, cwd):
    env = dict(os.environ, PORT=str(port), PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    with open(log_file, 'w') as log:
        # cwd: mmengine collects distributed results under ./.dist_test
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=300)
    text = open(log_file).read()
    assert proc.returncode == 0, text[-3000:]
    return text


@pytest.mark.slow  # dist_train.sh / dist_test.sh: torchrun subprocess chains
@pytest.mark.skipif(sys.platform == 'win32', reason='bash scripts')
def test_dist_train_and_test_maskrcnn_two_processes(demo_data, tmp_path):
    # batch 1 per process: the global batch of 2 the single-process demo uses
    cfg = demo_cfg('configs/steps_convnext_maskrcnn.py', demo_data, tmp_path,
                   iters=2, batch_size=1)
    cfg.log_level = 'INFO'
    cfg.train_cfg.val_begin = 1  # the demo's configs skip it; the distributed loop runs it
    config = str(tmp_path / 'dist_config.py')
    cfg.dump(config)

    text = _run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2'],
                str(tmp_path / 'train.log'), _free_port(), tmp_path)
    assert 'gloo backend' in text
    assert 'Distributed training is not used' not in text
    assert 'Distributed training: True' in text
    assert 'Iter(train) [2/2]' in text
    assert 'Iter(val) [2/2]' in text  # 4 validation images over 2 processes
    checkpoint = osp.join(str(tmp_path), 'iter_2.pth')
    assert osp.isfile(checkpoint)

    text = _run(['bash', osp.join(ROOT, 'tools', 'dist_test.sh'), config, checkpoint,
                 '2', '--work-dir', str(tmp_path / 'test')],
                str(tmp_path / 'test.log'), _free_port(), tmp_path)
    assert 'Iter(test) [2/2]' in text


SRUN_STUB = '#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SRUN_LOG"\n' \
    'echo "PYTHONPATH=$PYTHONPATH" >> "$SRUN_LOG"\n'


@pytest.mark.skipif(sys.platform == 'win32', reason='bash scripts')
@pytest.mark.parametrize('script, tool, path', [('slurm_train.sh', 'train', 'WORK_DIR'),
                                                ('slurm_test.sh', 'test', 'CHECKPOINT')])
def test_slurm_scripts_start_one_task_per_gpu_with_the_slurm_launcher(
        script, tool, path, tmp_path):
    """No cluster here: a stand-in ``srun`` records what the script asks Slurm for
    (one task per GPU, OpenMMLab's defaults, SRUN_ARGS passed on) and the command
    each task runs: our launcher of the stock tool, with mmengine's slurm launcher
    and the extra arguments last."""
    srun = tmp_path / 'srun'
    srun.write_text(SRUN_STUB)
    srun.chmod(0o755)
    log = tmp_path / 'srun.log'
    env = dict(os.environ, PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}',
               SRUN_LOG=str(log), GPUS='16', SRUN_ARGS='--quotatype=auto')
    config = 'configs/steps_convnext_maskrcnn.py'
    done = subprocess.run(['bash', osp.join(ROOT, 'tools', script), 'gpu', 'steps-job',
                           config, path, '--cfg-options', 'randomness.seed=1'],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *argv, pythonpath = log.read_text().splitlines()
    target = ['--work-dir=WORK_DIR'] if tool == 'train' else ['CHECKPOINT']
    assert argv == ['-p', 'gpu', '--job-name=steps-job', '--gres=gpu:8', '--ntasks=16',
                    '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
                    '--quotatype=auto', 'python', '-u', '-m', 'steps_mm.engine.dist_launch',
                    tool, config, *target, '--launcher=slurm', '--cfg-options',
                    'randomness.seed=1']
    # the tasks import this checkout's steps_mm
    assert osp.samefile(pythonpath.split('=', 1)[1].split(os.pathsep)[0], ROOT)
