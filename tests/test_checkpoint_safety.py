"""mmengine checkpoints load under torch's weights_only loader; nothing else does."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import steps_mm  # noqa: F401  (allows the types)


def mmengine_like_checkpoint():
    hub = MessageHub('test_checkpoint_safety')
    for v in (1.0, 2.0, 3.0):
        hub.update_scalar('train/loss', v)
    return dict(meta=dict(iter=3, seed=np.int64(7), loss=np.float64(1.5)),
                message_hub=hub.state_dict(),
                state_dict={'w': torch.ones(2)}, array=np.arange(3, dtype=np.float32))


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(mmengine_like_checkpoint(), path)
    loaded = torch.load(path)  # default weights_only=True on torch >= 2.6
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == 2.0 and buffer.current() == 3.0
    assert loaded['meta']['seed'] == 7
    np.testing.assert_array_equal(loaded['array'], [0, 1, 2])


def test_without_steps_mm_the_same_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(mmengine_like_checkpoint(), path)
    code = textwrap.dedent(f'''
        import pickle, torch
        try:
            torch.load({str(path)!r})
        except pickle.UnpicklingError as e:
            print('refused:', str(e)[:2000])
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert 'refused:' in out.stdout and 'Unsupported global' in out.stdout


class RunsCode:
    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    payload = RunsCode()
    payload.marker = marker
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': payload}, path)
    with pytest.raises(Exception) as info:
        torch.load(path)
    assert 'Weights only load failed' in str(info.value)
    assert 'system' in str(info.value)  # names the forbidden global
    assert not marker.exists()
    # the mmengine loader used by resume / load_from refuses it the same way
    from mmengine.runner import load_checkpoint
    with pytest.raises(Exception, match='Weights only load failed'):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))
    assert not marker.exists()


def test_getattr_stays_forbidden():
    allowed = {getattr(g, '__name__', None) for g in
               torch.serialization.get_safe_globals()}
    assert 'getattr' not in allowed and 'system' not in allowed
