"""Run the stock mmdet/mmseg ``tools/train.py`` or ``tools/test.py`` of the config's
codebase; what ``tools/dist_train.sh`` and ``tools/dist_test.sh`` start under torchrun.

    python -m steps_mm.engine.dist_launch {train,test} CONFIG [tool args]

The tool is the one mim installs with the codebase (``<package>/.mim/tools/``), picked
from the config's ``default_scope``. With a GPU it runs unchanged. Without one,
mmengine's ``pytorch`` launcher cannot run as is, so we adapt it in this process only:

* ``env_cfg.dist_cfg.backend=gloo`` is passed as a ``--cfg-options`` (nccl needs CUDA);
  unless the command line names a backend;
* ``torch.cuda.set_device(local_rank)`` (called by mmengine's launcher) is a no-op;
* DDP is built with ``device_ids=None``, which is what CPU modules need;
* SyncBN layers are reverted to BN, with a warning: torch's SyncBatchNorm refuses CPU
  tensors when more than one process trains, so each process normalises its own batch
  (UperNet then needs >= 2 images per process: its pyramid pooling has 1x1 maps).
"""
import gc
import os
import os.path as osp
import runpy
import sys
import warnings

import torch


def stock_tool(config: str, tool: str) -> str:
    """Path of the stock ``tools/<tool>.py`` of the config's codebase (via mim)."""
    from ..registry import codebase_of
    try:
        scope = codebase_of(config)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    with warnings.catch_warnings():  # mim imports the deprecated pkg_resources
        warnings.simplefilter('ignore')
        from mim.utils import get_installed_path
    package = {'mmdet': 'mmdet', 'mmseg': 'mmsegmentation'}[scope]  # pip names
    path = osp.join(get_installed_path(package), '.mim', 'tools', f'{tool}.py')
    if not osp.isfile(path):
        raise SystemExit(f'{path} not found: is {scope} installed with its tools?')
    return path


def _adapt_mmengine_for_cpu() -> None:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.model.wrappers import is_model_wrapper
    from mmengine.runner import Runner

    torch.cuda.set_device = lambda device: None
    wrap_model = Runner.wrap_model

    def cpu_wrap_model(self, model_wrapper_cfg, model):
        if not self.distributed or is_model_wrapper(model):
            return wrap_model(self, model_wrapper_cfg, model)
        if any(isinstance(m, torch.nn.SyncBatchNorm) or 'SyncBatchNorm' in
               type(m).__name__ for m in model.modules()):
            self.logger.warning('CPU distributed run: SyncBN reverted to BN (torch '
                                'syncs batch statistics on GPUs only)')
            model = revert_sync_batchnorm(model)
        # the stock defaults for DDP, less the GPU index
        wrapper_cfg = dict(model_wrapper_cfg or dict(
            broadcast_buffers=False,
            find_unused_parameters=self.cfg.get('find_unused_parameters', False)))
        wrapper_cfg['device_ids'] = None
        return wrap_model(self, wrapper_cfg, model)

    Runner.wrap_model = cpu_wrap_model


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] not in ('train', 'test'):
        raise SystemExit(__doc__.split('\n\n')[1])
    tool, config, rest = argv[0], argv[1], argv[2:]
    path = stock_tool(config, tool)
    args = [config] + rest  # the cfg option goes last: its nargs='+' would eat CKPT
    if not torch.cuda.is_available():
        if os.environ.get('RANK', '0') == '0':
            print('steps_mm.engine.dist_launch: no GPU, so the gloo backend, DDP on '
                  'CPU and BN instead of SyncBN', flush=True)
        if not any('dist_cfg.backend' in a for a in rest):
            args += ['--cfg-options', 'env_cfg.dist_cfg.backend=gloo']
        _adapt_mmengine_for_cpu()
    sys.argv = [path] + args
    sys.path.insert(0, osp.dirname(osp.dirname(path)))  # as the stock scripts do
    runpy.run_path(path, run_name='__main__')
    close_process_group()


def close_process_group() -> None:
    """Close the default process group once every rank is done, joining gloo's threads.

    The stock tools leave the group to interpreter exit. Its gloo worker threads can
    still hold a finished collective's tensor then; dropping it needs the GIL, which
    a finalizing interpreter refuses, and the rank aborts after a finished run
    ("terminate called without an active exception", SIGABRT). The runner keeps the
    group alive through reference cycles (its DDP wrapper holds it), so
    ``destroy_process_group`` alone does not free it: collect them first, and the
    group's destructor joins its threads here.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    gc.collect()
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
