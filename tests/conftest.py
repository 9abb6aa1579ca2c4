"""Shared fixtures: the built-in dataset (built once per session) and demo configs."""
import os.path as osp

import pytest
from mmengine.config import Config

from steps_mm.demo import build_demo_datasets, write_demo_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


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
