"""``import steps_mm`` registers modules and changes nothing else in the process
(docs/runtime.md), also once mmdet and mmseg are imported beside it with
mmpretrain installed and no torchvision; mmpretrain and the torchvision stand-in
come only with the opt-in ``steps_mm.pretraining``. Each case runs in a fresh
interpreter."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT

# The process's state as a JSON-able dict, taken before and after the imports.
# Third-party imports change some of it themselves (mmdet adds six's and
# importlib_metadata's finders to sys.meta_path, scipy and sympy copyreg
# reducers), so a run with steps_mm is compared with the same run without it.
PROBE = '''
import copyreg, json, os, sys
umask_calls = []
_umask = os.umask
os.umask = lambda mask: umask_calls.append(mask) or _umask(mask)
if {hide_torchvision}:
    sys.modules['torchvision'] = None  # as on a machine without it
import torch
from mmengine.fileio import io as fileio
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.runner import checkpoint, runner


def name(obj):
    obj = obj[0] if isinstance(obj, tuple) else obj
    return f'{{getattr(obj, "__module__", "?")}}.{{getattr(obj, "__qualname__", obj)}}'


def state():
    mask = _umask(0o022)
    _umask(mask)
    return dict(
        sys_path=list(sys.path), meta_path=[name(type(f)) for f in sys.meta_path],
        path_hooks=[name(h) for h in sys.path_hooks],
        backends={{k: name(v) for k, v in fileio.backends.items()}},
        prefixes={{k: name(v) for k, v in fileio.prefix_to_backends.items()}},
        local_backend=name(type(get_file_backend('/work_dir/iter_1.pth'))),
        find_latest=name(runner.find_latest_checkpoint),
        find_latest_is_mmengines=runner.find_latest_checkpoint
        is checkpoint.find_latest_checkpoint,
        umask=mask, umask_calls=list(umask_calls),
        safe_globals=sorted(map(name, torch.serialization.get_safe_globals())),
        copyreg=sorted(map(name, copyreg.dispatch_table)),
        imported=sorted({{m.split('.')[0] for m, module in sys.modules.items()
                          if module is not None}}))


before = state()
{imports}
json.dump(dict(before=before, after=state()), open({out!r}, 'w'))
'''


def probe(tmp_path, imports: str, hide_torchvision: bool = True):
    out = tmp_path / f'state{len(list(tmp_path.iterdir()))}.json'
    code = PROBE.format(imports=imports, out=str(out),
                        hide_torchvision=hide_torchvision)
    run = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.load(open(out)), run.stdout, run.stderr


def documented_safe_globals():
    """docs/runtime.md: numpy's array and scalar rebuilders, ndarray, dtype and
    the dtype classes of numpy 2, and mmengine's HistoryBuffer."""
    core = 'numpy._core' if hasattr(np, '_core') else 'numpy.core'
    names = {f'{core}.multiarray._reconstruct', f'{core}.multiarray.scalar',
             'numpy.ndarray', 'numpy.dtype',
             'mmengine.logging.history_buffer.HistoryBuffer'}
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
              np.uint32, np.uint64, np.float16, np.float32, np.float64):
        cls = type(np.dtype(t))
        names.add(f'{cls.__module__}.{cls.__qualname__}')
    return names


def test_import_steps_mm_changes_nothing_but_the_documented_allow_list(tmp_path):
    imports = 'import mmdet.models, mmseg.models'
    reference, _, _ = probe(tmp_path, imports)
    ours, stdout, stderr = probe(tmp_path, 'import steps_mm\n' + imports)
    assert (stdout, stderr) == ('', '')
    before, after = ours['before'], ours['after']
    assert after['local_backend'] == 'mmengine.fileio.backends.local_backend.LocalBackend'
    assert after['find_latest_is_mmengines']
    assert after['umask'] == before['umask'] and after['umask_calls'] == []
    assert after['sys_path'] == before['sys_path']
    assert 'torchvision' not in after['imported']
    # everything the same imports change without steps_mm, and nothing more
    for key in ('sys_path', 'meta_path', 'path_hooks', 'backends', 'prefixes',
                'find_latest'):
        assert after[key] == reference['after'][key], key
    added = set(after['safe_globals']) - set(reference['after']['safe_globals'])
    assert added == documented_safe_globals()
    assert set(after['copyreg']) - set(reference['after']['copyreg']) == {
        'mmengine.logging.history_buffer.HistoryBuffer'}



def test_import_steps_mm_registers_and_imports_no_mmpretrain(tmp_path):
    state, stdout, stderr = probe(tmp_path, textwrap.dedent('''
        import steps_mm
        from mmdet.registry import MODELS as DET
        from mmseg.registry import MODELS as SEG
        assert 'StepsSwinTransformer' in DET.module_dict
        assert 'StepsConvNeXt' in SEG.module_dict
    '''), hide_torchvision=False)
    assert (stdout, stderr) == ('', '')
    assert {'steps_mm', 'mmdet', 'mmseg'} <= set(state['after']['imported'])
    assert not {'mmpretrain', 'torchvision'} & set(state['after']['imported'])


@pytest.mark.slow
def test_the_stand_in_never_comes_with_steps_mm_mmdet_and_mmpretrain(tmp_path):
    """A process that imports steps_mm, builds on mmdet (which try-imports
    mmpretrain) and imports mmpretrain itself sees torchvision as the machine
    has it: the real one, or an ImportError, never the stand-in."""
    state, stdout, stderr = probe(tmp_path, textwrap.dedent('''
        import steps_mm, mmdet.models
        try:
            import mmpretrain
        except ImportError:
            pass
        try:
            import torchvision
            print('torchvision', torchvision.__version__)
        except ImportError:
            print('torchvision: ImportError')
    '''), hide_torchvision=False)
    assert 'standin' not in stdout and '[steps_mm]' not in stderr, stdout + stderr
    assert state['after']['sys_path'] == state['before']['sys_path']


@pytest.mark.slow
def test_steps_mm_pretraining_is_the_opt_in(tmp_path):
    """Importing ``steps_mm.pretraining`` registers the modules in mmpretrain's
    registries and, without torchvision, enables the stand-in, saying so once."""
    has_torchvision = subprocess.run(
        [sys.executable, '-c', 'import torchvision'], capture_output=True).returncode == 0
    state, stdout, stderr = probe(tmp_path, textwrap.dedent('''
        import steps_mm.pretraining
        from mmpretrain.registry import MODELS, OPTIM_WRAPPERS
        import torchvision
        print(MODELS.get('StepsConvNeXt').__module__,
              OPTIM_WRAPPERS.get('AutoAmpOptimWrapper').__module__,
              torchvision.__version__)
    '''), hide_torchvision=False)
    module, wrapper, version = stdout.split()
    assert (module, wrapper) == ('steps_mm.models.backbones.convnext',
                                 'steps_mm.engine.optim_wrapper')
    if has_torchvision:
        pytest.skip('a real torchvision is installed: the stand-in stays off')
    assert version.endswith('steps_mm.standin')
    lines = [line for line in stderr.splitlines() if 'stand-in' in line]
    assert len(lines) == 1 and 'torchvision is not installed' in lines[0], stderr
    added = [p for p in state['after']['sys_path'] if p not in state['before']['sys_path']]
    assert len(added) == 1 and added[0].endswith('torchvision_standin/site')
