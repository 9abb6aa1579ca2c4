"""The wheel is the plugin: built from the checkout with ``pip wheel --no-deps .``
and installed away from it, it imports and builds a Steps backbone through mmdet's
registry from an unrelated folder, carries its model index and the torchvision
stand-in, and holds none of the lab."""
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT, bare_venv
from test_import_graph import NOT_MODULES

BUILD = '''
import sys
import steps_mm
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
register_all_modules()
model = MODELS.build(dict(type='StepsConvNeXt', arch='tiny', layout='steps'))
print(steps_mm.__file__)
print(type(model).__name__, sum(p.numel() for p in model.parameters()))
try:
    import steps_lab
    print('steps_lab at', steps_lab.__file__)
except ModuleNotFoundError:
    print('no steps_lab')
'''


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                    '--no-build-isolation', '-q', '-w', str(out), ROOT],
                   check=True, cwd=str(out))
    (found, ) = [osp.join(out, f) for f in os.listdir(out) if f.endswith('.whl')]
    return found


@pytest.mark.slow
def test_the_wheel_holds_the_plugin_and_its_data_but_no_lab(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split('/')[0] for n in names if not n.endswith('.dist-info/')}
    assert {p for p in packages if not p.endswith('.dist-info')} == {'steps_mm'}
    assert 'steps_mm/.mim/metafile.yml' in names
    assert 'steps_mm/models/backbones/convnext.py' in names
    standin = [n for n in names if n.startswith(
        'steps_mm/' + NOT_MODULES[0].replace(os.sep, '/'))]
    assert 'steps_mm/torchvision_standin/site/torchvision/__init__.py' in standin
    requirements = [line for line in zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith('METADATA'))).decode().splitlines()
        if line.startswith('Requires-Dist:') and 'extra ==' not in line]
    assert not any('scipy' in r or 'matplotlib' in r for r in requirements), requirements


@pytest.mark.slow
def test_the_wheel_installed_away_from_the_checkout_builds_a_backbone(wheel, tmp_path):
    """In a venv that sees this environment's packages (listed as plain paths, so
    the editable install's ``easy-install.pth``, which would put the checkout on
    ``sys.path``, is not read) and nothing of the checkout."""
    python, purelib = bare_venv(tmp_path / 'venv')
    environment = [p for p in sys.path if p.endswith('-packages') and osp.isdir(p)]
    with open(osp.join(purelib, 'zz-environment.pth'), 'w') as f:
        f.writelines(p + '\n' for p in environment)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    subprocess.run([python, '-m', 'pip', 'install', '--no-deps', '-q', '--target',
                    purelib, wheel], check=True, env=env, cwd=str(tmp_path))
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    done = subprocess.run([python, '-c', BUILD], capture_output=True, text=True,
                          env=env, cwd=str(elsewhere))
    assert done.returncode == 0, done.stderr[-3000:]
    location, built, lab = done.stdout.strip().splitlines()
    assert location.startswith(purelib) and not location.startswith(ROOT)
    assert built.split()[0] == 'StepsConvNeXt' and int(built.split()[1]) > 27e6
    assert lab == 'no steps_lab'
