"""tools/install.sh in a throw-away venv that sees this environment's packages:
it keeps an installed torch and mmcv inside steps_mm/stack.py's ranges whatever
their version (here relabelled 2.4.0 and 2.0.1 by metadata that shadows the real
ones), replaces versions outside them, installs steps_mm so that ``mim search
steps_mm`` works from any directory, and does nothing on a second run."""
import os
import os.path as osp
import shutil
import site as python_site
import subprocess
import sys
import sysconfig

import pytest

from conftest import ROOT, bare_venv


def relabel(site_packages: str, dist: str, version: str) -> None:
    """Distribution metadata saying ``dist`` is installed at ``version``; the
    venv's site-packages come first, so pip and importlib.metadata see it."""
    info = osp.join(site_packages, f'{dist}-{version}.dist-info')
    os.makedirs(info)
    with open(osp.join(info, 'METADATA'), 'w') as f:
        f.write(f'Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n')
    with open(osp.join(info, 'INSTALLER'), 'w') as f:
        f.write('pip\n')


def site_dirs() -> list:
    """The site directories this interpreter imports packages from, in its
    order: a venv's own (and the base interpreter's where it sees them), the
    user's."""
    dirs = python_site.getsitepackages() + ([python_site.getusersitepackages()]
                                            if python_site.ENABLE_USER_SITE else [])
    return sorted({d for d in dirs if d in sys.path}, key=sys.path.index)


@pytest.fixture
def venv(tmp_path):
    """(python, site-packages, env) of a venv over this environment's packages;
    without its own pip (``python -m pip`` runs this environment's, installing
    into the venv). ``--system-site-packages`` would show the base interpreter's
    packages, not those of a venv the tests run in: a ``.pth`` file adds this
    environment's site directories instead, after the venv's own, so that
    metadata written there shadows theirs. Python reads a directory's ``.pth``
    files in name order; the name sorts it after the installer's
    ``easy-install.pth``, whose entry (this tree) must come first."""
    python, purelib = bare_venv(tmp_path / 'venv')
    with open(osp.join(purelib, 'zz-environment-under-test.pth'), 'w') as f:
        f.writelines(f'import site; site.addsitedir({d!r})\n' for d in site_dirs())
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    return python, purelib, dict(env, PYTHON=python)


def install(env, *args):
    out = subprocess.run(['bash', osp.join(ROOT, 'tools', 'install.sh'), *args],
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def version_in(python, env, dist):
    return subprocess.run([python, '-c', 'import importlib.metadata as m, sys; '
                           f'print(m.version({dist!r}))'], env=env, cwd='/',
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.slow
def test_keeps_torch_and_mmcv_in_range_and_mim_search_works(venv, tmp_path):
    python, site, env = venv
    relabel(site, 'torch', '2.4.0')
    relabel(site, 'mmcv', '2.0.1')
    out = install(env)
    assert 'torch 2.4.0: kept' in out
    assert 'mmcv 2.0.1: kept' in out and 'compiled ops load' in out
    assert 'installed: nothing' in out and 'steps_mm: installing, editable' in out
    assert (version_in(python, env, 'torch'), version_in(python, env, 'mmcv')) == \
        ('2.4.0', '2.0.1')

    # mim as a user types it, from a directory outside the repository
    mim = osp.join(sysconfig.get_paths()['scripts'], 'mim')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    for extra in ([], ['--field', 'flops', 'parameters']):
        found = subprocess.run([python, mim, 'search', 'steps_mm', *extra],
                               cwd=str(elsewhere), env=env, capture_output=True,
                               text=True, timeout=300)
        assert found.returncode == 0, found.stderr[-3000:]
        assert 'config id: steps_convnext_maskrcnn' in found.stdout
    assert 'parameters' in found.stdout and 'flops' in found.stdout

    again = install(env)  # idempotent: checks only
    assert 'steps_mm: kept, editable at ' + ROOT in again
    assert 'would run' not in again and 'installed: nothing' in again

    # pip knows the install: it uninstalls it
    subprocess.run([python, '-m', 'pip', 'uninstall', '-y', '-q', 'steps_mm'],
                   env=env, check=True)
    assert not [f for f in os.listdir(site) if 'steps' in f]
    assert ROOT not in open(osp.join(site, 'easy-install.pth')).read().split()


def test_versions_outside_the_ranges_are_replaced_by_the_tested_ones(venv):
    python, site, env = venv
    relabel(site, 'torch', '1.13.1')
    relabel(site, 'mmcv', '2.2.0')
    out = install(env, '--dry-run')
    assert 'torch: 1.13.1 is outside the supported >=2.1: installing the tested ' \
        'torch==2.13.0' in out
    assert 'would run: pip install torch==2.13.0' in out
    assert 'mmcv: decided once torch is installed' in out
    assert 'mmdet 3.3.0: kept' in out and 'dry run: nothing was changed' in out
    assert version_in(python, env, 'torch') == '1.13.1'

    shutil.rmtree(osp.join(site, 'torch-1.13.1.dist-info'))  # the real torch again
    out = install(env, '--dry-run')
    assert 'mmcv: 2.2.0 is outside the supported >=2.0.0rc4,<2.2.0: installing ' \
        'the tested mmcv==2.1.0' in out
    assert 'would run: pip install --no-build-isolation --force-reinstall ' \
        '--no-deps mmcv==2.1.0' in out
