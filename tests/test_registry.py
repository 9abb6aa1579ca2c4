"""The three ways to use a Steps backbone from OpenMMLab configs, each in a fresh
interpreter so that nothing is registered beforehand."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from fast_lane import sampled


def run_python(code: str, cwd=ROOT):
    out = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_codebase_of_follows_local_bases_then_default_scope(tmp_path):
    from steps_mm.registry import codebase_of, inherited_codebase
    (tmp_path / 'a.py').write_text("_base_ = 'mmseg::upernet/x.py'\n")
    (tmp_path / 'b.py').write_text("_base_ = './a.py'\nmodel = dict()\n")
    (tmp_path / 'c.py').write_text("model = dict()\n")
    (tmp_path / 'd.py').write_text("default_scope = 'mmpretrain'\n")
    assert inherited_codebase(str(tmp_path / 'b.py')) == 'mmseg'
    assert codebase_of(str(tmp_path / 'b.py')) == 'mmseg'  # as text: x.py need not exist
    assert inherited_codebase(str(tmp_path / 'c.py')) is None
    assert codebase_of(str(tmp_path / 'd.py')) == 'mmpretrain'
    with pytest.raises(ValueError, match='default_scope is None'):
        codebase_of(str(tmp_path / 'c.py'))


@pytest.mark.parametrize('codebase', sampled(['mmdet', 'mmseg'], fast=lambda c: c == 'mmdet'))
def test_plain_type_in_codebase_registry(codebase):
    out = run_python(f'''
        import steps_mm
        from {codebase}.registry import MODELS
        from mmengine.registry import init_default_scope
        init_default_scope('{codebase}')
        model = MODELS.build(dict(type='StepsConvNeXt', arch='tiny', out_indices=(0, 3)))
        print(type(model).__module__, model.out_channels)
    ''')
    assert 'steps_mm.models.backbones.convnext [96, 768]' in out


@pytest.mark.slow
@pytest.mark.parametrize('codebase', ['mmdet', 'mmseg'])
def test_scoped_type_without_importing_steps_mm(codebase):
    # mmengine imports steps_mm.registry when it meets the 'steps_mm.' prefix
    out = run_python(f'''
        import sys
        from {codebase}.registry import MODELS
        from mmengine.registry import init_default_scope
        init_default_scope('{codebase}')
        assert 'steps_mm' not in sys.modules
        model = MODELS.build(dict(type='steps_mm.StepsConvNeXt', layout='sequential'))
        print(type(model).__name__, model.layout)
    ''')
    assert 'StepsConvNeXt sequential' in out


@pytest.mark.slow
def test_custom_imports_in_a_user_config(tmp_path):
    user_cfg = tmp_path / 'my_mask_rcnn.py'
    user_cfg.write_text(textwrap.dedent('''
        _base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
        custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
        model = dict(
            backbone=dict(_delete_=True, type='StepsConvNeXt', arch='tiny',
                          out_indices=[0, 1, 2, 3], gap_before_final_norm=False),
            neck=dict(in_channels=[96, 192, 384, 768]))
    '''))
    out = run_python(f'''
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile({str(user_cfg)!r})
        assert 'steps_mm' in sys.modules  # imported by custom_imports
        init_default_scope(cfg.default_scope)
        from mmdet.registry import MODELS
        model = MODELS.build(cfg.model)
        print(type(model).__name__, type(model.backbone).__name__)
    ''', cwd=str(tmp_path))
    assert 'MaskRCNN StepsConvNeXt' in out


#: run first in the interpreters that import mmpretrain: torchvision as on a machine
#: that has it (mmpretrain 1.2 imports it at module level): the real one where
#: installed, else steps_mm's import-only stand-in, appended to ``sys.path``
#: without importing steps_mm
WITH_TORCHVISION = f'''
import importlib.util, sys
if importlib.util.find_spec('torchvision') is None:
    sys.path.append({osp.join(ROOT, 'steps_mm', 'torchvision_standin', 'site')!r})
'''


@pytest.mark.slow
def test_custom_imports_in_a_user_mmpretrain_config(tmp_path):
    """The README's user config, with mmpretrain's ImageNet recipe: plain
    ``type='StepsConvNeXt'`` and ``custom_imports=dict(imports=['steps_mm'])``,
    built by mmpretrain's own path (its tools/train.py: ``Config.fromfile``, then
    ``Runner.from_cfg``), which imports mmpretrain only after steps_mm."""
    user_cfg = tmp_path / 'my_convnext_in1k.py'
    user_cfg.write_text(textwrap.dedent('''
        _base_ = 'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py'
        custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
        model = dict(
            backbone=dict(_delete_=True, type='StepsConvNeXt', arch='tiny',
                          out_indices=[3], gap_before_final_norm=True))
    '''))
    out = run_python(WITH_TORCHVISION + textwrap.dedent(f'''
        from mmengine.config import Config
        from mmengine.runner import Runner
        cfg = Config.fromfile({str(user_cfg)!r})
        assert 'steps_mm' in sys.modules and 'mmpretrain' not in sys.modules
        cfg.work_dir = {str(tmp_path / 'work')!r}
        model = Runner.from_cfg(cfg).model
        print(type(model).__module__, type(model.backbone).__module__)
    '''), cwd=str(tmp_path))
    assert out.split()[-2:] == ['mmpretrain.models.classifiers.image',
                                'steps_mm.models.backbones.convnext']


@pytest.mark.slow
def test_import_after_mmpretrain_registers_there_and_imports_nothing_of_it():
    out = run_python(WITH_TORCHVISION + textwrap.dedent('''
        import mmpretrain.registry
        before = set(sys.modules)
        import steps_mm
        new = sorted(m for m in set(sys.modules) - before
                     if m.split('.')[0] in ('mmpretrain', 'torchvision'))
        from mmpretrain.registry import MODELS, OPTIM_WRAPPERS
        print('StepsConvNeXt' in MODELS.module_dict,
              'AutoAmpOptimWrapper' in OPTIM_WRAPPERS.module_dict, new)
    '''))
    assert out.split()[-3:] == ['True', 'True', '[]']


@pytest.mark.slow
@pytest.mark.parametrize('present, missing', [('mmdet', 'mmseg'), ('mmseg', 'mmdet')])
def test_imports_with_only_one_codebase_installed(present, missing):
    out = run_python(f'''
        import sys
        sys.modules['{missing}'] = None  # as if it were not installed
        import steps_mm
        from {present}.registry import MODELS
        print('StepsConvNeXt' in MODELS.module_dict)
    ''')
    assert out.strip().endswith('True')


@pytest.mark.parametrize('backbone, channels', [
    ("type='StepsConvNeXt'", [96, 192, 384, 768]),
    ("type='StepsSwinTransformer'", [96, 192, 384, 768]),
    ("type='StepsResNet', depth=50", [256, 512, 1024, 2048])])
@pytest.mark.slow
def test_default_outputs_feed_a_detector(tmp_path, backbone, channels):
    """Only the type in a user's Mask R-CNN: the backbone's defaults give the four
    NCHW maps FPN reads (no output arguments needed)."""
    user_cfg = tmp_path / 'my_mask_rcnn.py'
    user_cfg.write_text(textwrap.dedent(f'''
        _base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
        custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
        model = dict(backbone=dict(_delete_=True, {backbone}),
                     neck=dict(in_channels={channels}))
    '''))
    out = run_python(f'''
        import torch
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile({str(user_cfg)!r})
        init_default_scope(cfg.default_scope)
        from mmdet.registry import MODELS
        model = MODELS.build(cfg.model).eval()
        with torch.no_grad():
            feats = model.extract_feat(torch.randn(1, 3, 64, 96))
        print([tuple(f.shape) for f in feats])
    ''', cwd=str(tmp_path))
    assert out.strip() == str([(1, 256, 16, 24), (1, 256, 8, 12), (1, 256, 4, 6),
                               (1, 256, 2, 3), (1, 256, 1, 2)])
