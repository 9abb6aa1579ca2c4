"""Shared fixtures: the built-in dataset (built once per session), demo configs,
and the demo's chain run once at test size through the stock tools."""
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from steps_lab.demo import (build_classification_dataset, build_demo_datasets,
                           write_demo_config)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def bare_venv(root) -> tuple:
    """A venv without pip at ``root``: ``(its python, its site-packages)``, for
    tests that put chosen packages on its path through a ``.pth`` file."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(root)],
                   check=True)
    python = str(root / 'bin' / 'python')
    purelib = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.'
                              'get_paths()["purelib"])'], capture_output=True,
                             text=True, check=True).stdout.strip()
    return python, purelib


@pytest.fixture(autouse=True)
def fresh_mmengine_instances():
    """Each test starts without mmengine's global visualizers and loggers. A Runner
    gets them by name (``'visualizer'`` in the stock configs, the timestamp for the
    logger), so a later test's Runner would reuse an earlier test's, writing into
    that test's tmp directory, which is removed once it passed."""
    yield
    from mmengine.logging import MMLogger
    from mmengine.visualization import Visualizer
    classes = [Visualizer]
    for cls in classes:
        cls._instance_dict.clear()
        classes.extend(cls.__subclasses__())
    for logger in MMLogger._instance_dict.values():
        for handler in logger.handlers:
            handler.close()
    MMLogger._instance_dict.clear()


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A small copy of the built-in dataset: 8 training and 4 validation images."""
    root = tmp_path_factory.mktemp('demo_data')
    build_demo_datasets(str(root), num_train=8, num_val=4, size=128)
    return str(root)


def demo_cfg(config: str, data_dir: str, work_dir, iters: int = 2,
             batch_size: int = 2, **kwargs) -> Config:
    """``config`` (path relative to the repo) on the built-in data, offline."""
    out = write_demo_config(osp.join(ROOT, config), data_dir,
                            osp.join(str(work_dir), 'config.py'), iters=iters,
                            size=128, batch_size=batch_size, **kwargs)
    cfg = Config.fromfile(out)
    cfg.work_dir = str(work_dir)
    # baseline twins load ImageNet weights from the internet; tests start from scratch
    cfg.model.backbone.init_cfg = None
    cfg.log_level = 'WARNING'
    return cfg


#: the demo's chain at test size: 2 pretraining epochs at 64 px, 2 iterations of
#: each fine-tuning at 128 px (the size ``demo_data`` is built at)
def small_recipe():
    from steps_lab.demo.chain import ChainRecipe
    return ChainRecipe(pretrain_epochs=2, pretrain_size=64, det_iters=2, seg_iters=2,
                       size=128)


def _run_chain(model, data_dir, work_dir, stages):
    from steps_lab.demo.chain import run_chain
    build_classification_dataset(data_dir, num_train=8, num_val=4, size=64)
    return run_chain(model, data_dir, str(work_dir), small_recipe(), stages=stages,
                     echo=lambda line: None)


@pytest.fixture(scope='session')
def steps_chain(demo_data, tmp_path_factory):
    """``steps_lab.demo.chain.run_chain`` of Steps-ConvNeXt-T: ``mim train`` /
    ``mim test`` of its pretraining, then of its Mask R-CNN and UperNet from that
    checkpoint; ``{'pretrain'|'det'|'seg': StageRun}`` (job dirs with ``train/``,
    ``test/`` and ``train.log``)."""
    from steps_lab.demo.chain import STEPS
    return _run_chain(STEPS, demo_data, tmp_path_factory.mktemp('steps_chain'),
                      ('det', 'seg'))


@pytest.fixture(scope='session')
def baseline_chain(demo_data, tmp_path_factory):
    """The same chain for the ConvNeXt-T twin, pretraining and Mask R-CNN."""
    from steps_lab.demo.chain import BASELINE
    return _run_chain(BASELINE, demo_data, tmp_path_factory.mktemp('baseline_chain'),
                      ('det', ))
