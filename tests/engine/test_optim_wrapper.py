"""The device-aware AMP optimizer wrapper (``steps_mm.engine.optim_wrapper``)."""
import warnings

import torch
from mmengine.logging import MMLogger
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from steps_mm.engine import AutoAmpOptimWrapper


def make_optimizer():
    return torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3)


def test_auto_amp_is_plain_fp32_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    wrapper = AutoAmpOptimWrapper(optimizer=make_optimizer(), loss_scale='dynamic')
    assert type(wrapper) is OptimWrapper


def test_auto_amp_uses_amp_with_gpu(monkeypatch):
    # the wrapper logs its choice; mmengine's logger, made on first use, asks the
    # (faked) CUDA for the device id, which it cannot give
    MMLogger.get_current_instance()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # GradScaler warns: there is no real GPU
        wrapper = AutoAmpOptimWrapper(optimizer=make_optimizer(), loss_scale='dynamic')
    assert isinstance(wrapper, AmpOptimWrapper)
