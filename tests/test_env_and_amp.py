"""Version check messages and the device-aware AMP optimizer wrapper."""
import warnings

import pytest
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from steps_mm.engine import AutoAmpOptimWrapper
from steps_mm.env_check import check_versions

TESTED = dict(torch='2.13.0+cpu', mmengine='0.10.7', mmcv='2.1.0', mmdet='3.3.0',
              mmsegmentation='1.2.2')


def test_tested_matrix_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert check_versions(dict(TESTED)) is None


def test_untested_versions_warn_in_one_line():
    found = dict(TESTED, torch='2.5.1', mmsegmentation=None)
    with pytest.warns(UserWarning) as record:
        message = check_versions(found)
    assert len(record) == 1 and '\n' not in message
    assert 'untested versions found: torch 2.5.1' in message
    assert 'Supported: torch >=2.1' in message and 'mmsegmentation' not in \
        message.split('Supported')[0]


def test_mmcv_too_new_for_mmdet_raises():
    with pytest.raises(ImportError, match='mmcv 2.2.0 is installed.*mmcv<2.2.0'):
        check_versions(dict(TESTED, mmcv='2.2.0'))


def make_optimizer():
    return torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3)


def test_auto_amp_is_plain_fp32_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    wrapper = AutoAmpOptimWrapper(optimizer=make_optimizer(), loss_scale='dynamic')
    assert type(wrapper) is OptimWrapper


def test_auto_amp_uses_amp_with_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # GradScaler warns: there is no real GPU
        wrapper = AutoAmpOptimWrapper(optimizer=make_optimizer(), loss_scale='dynamic')
    assert isinstance(wrapper, AmpOptimWrapper)
