"""Install steps_mm and the stack it runs on into the current Python environment,
keeping what already works (docs/install.md). Run through ``tools/install.sh``:

    bash tools/install.sh [--dry-run]       (PYTHON=/path/to/python picks the env)

For each distribution of ``steps_mm/stack.py`` (torch, mmengine, mmcv, mmdet,
mmsegmentation, mmpretrain) an installed version inside the supported range is
kept (mmcv only if its compiled ops load); where none is installed, or it is
outside the range, the tested version is installed. Then what the tools and tests
import, where missing, and steps_mm itself, editable. Every decision is printed;
``--dry-run`` prints them and changes nothing. With everything present it only
checks (seconds).

Standard library only (it runs before anything else is installed): install.sh runs
this file by path, and it reads the stack table by path.
"""
import argparse
import importlib
import importlib.metadata as metadata
import os
import os.path as osp
import runpy
import subprocess
import sys
import sysconfig

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STACK = runpy.run_path(osp.join(ROOT, 'steps_mm', 'stack.py'))['STACK']
# mmcv's source build needs these; setuptools >= 82 drops pkg_resources, which
# mmcv and mim import
SETUPTOOLS = 'setuptools>=77,<82'
BUILD_TOOLS = ['wheel', 'ninja']
# what mmdet / mmseg, the tools and the tests import without declaring it;
# installed where missing (any installed version is kept)
EXTRAS = ['pycocotools', 'ftfy', 'regex', 'scikit-image', 'matplotlib', 'scipy',
          'pytest', 'mlxtend', 'onnx==1.23.2', 'onnxruntime==1.32.0',
          'onnxscript==0.7.2']
# openmim's and mmpretrain's declared requirements downgrade setuptools or pull in
# packages they never import: installed without them, with what they do import
NO_DEPS = {'openmim': ('0.3.9', ['click', 'colorama', 'model-index', 'pandas',
                                 'requests', 'rich', 'tabulate']),
           'mmpretrain': (STACK['mmpretrain'][1], ['importlib_metadata', 'einops',
                                                   'mat4py', 'modelindex'])}
MMCV_BUILD = '~20 min on 2 CPU cores; pip caches the wheel'


def say(message: str) -> None:
    print(f'[install] {message}', flush=True)


def _packaging():
    try:
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.specifiers import SpecifierSet
        from pip._vendor.packaging.version import Version
    return SpecifierSet, Version


def installed(dist: str):
    """The installed version of ``dist``, or None."""
    importlib.invalidate_caches()
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def in_range(version: str, specifier: str) -> bool:
    SpecifierSet, Version = _packaging()
    # local labels (+cu121, +cpu) and pre-releases inside the range count
    return SpecifierSet(specifier).contains(Version(version).public, prereleases=True)


def runs(code: str) -> bool:
    return subprocess.run([sys.executable, '-c', code], cwd='/', capture_output=True
                          ).returncode == 0


def mmcv_ops_load() -> bool:
    # also fails when mmcv was built against another torch (undefined symbols)
    return runs('import mmcv.ops')


class Installer:
    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.kept, self.added = [], []

    def pip(self, *args: str) -> None:
        command = [sys.executable, '-m', 'pip', 'install',
                   '--disable-pip-version-check', *args]
        if self.dry_run:
            say('would run: pip install ' + ' '.join(args))
            return
        subprocess.run(command, check=True)

    def keep(self, dist: str, version: str, why: str = '') -> None:
        self.kept.append(f'{dist} {version}')
        say(f'{dist} {version}: kept{why}')

    def stack_member(self, dist: str, check=None) -> bool:
        """Keep ``dist`` if installed inside its range (and ``check()`` passes);
        True when it must be installed (the reason is printed)."""
        supported, tested = STACK[dist]
        version = installed(dist)
        if version is None:
            reason = 'not installed'
        elif not in_range(version, supported):
            reason = f'{version} is outside the supported {supported}'
        elif check is not None and not check():
            reason = f'{version} is installed but its compiled ops do not load'
        else:
            ops = ', compiled ops load' if check is not None else ''
            self.keep(dist, version, f' (supported {supported}, tested {tested}{ops})')
            return False
        say(f'{dist}: {reason}: installing the tested {dist}=={tested}')
        self.added.append(f'{dist}=={tested}')
        return True

    def missing(self, requirements):
        names = [r.split('==')[0].split('>')[0].split('<')[0] for r in requirements]
        return [r for r, name in zip(requirements, names) if installed(name) is None]

    def run(self) -> None:
        version = installed('setuptools')
        if version is None or not in_range(version, SETUPTOOLS[len('setuptools'):]):
            say(f'setuptools {version}: needs {SETUPTOOLS} (mmcv and mim import '
                'pkg_resources)')
            self.pip(SETUPTOOLS)
        if self.stack_member('torch'):
            say('(pip picks the build: a CPU wheel where one lies in its find-links, '
                "else PyPI's default, with CUDA on Linux x86_64; docs/install.md)")
            self.pip(f"torch=={STACK['torch'][1]}", SETUPTOOLS)
        if self.stack_member('mmengine'):
            self.pip(f"mmengine=={STACK['mmengine'][1]}", SETUPTOOLS)
        self.mmcv()
        codebases = [f'{d}=={STACK[d][1]}' for d in ('mmdet', 'mmsegmentation')
                     if self.stack_member(d)]
        if codebases:
            self.pip(*codebases, SETUPTOOLS)
        for dist, (pin, imports) in NO_DEPS.items():
            need = self.stack_member(dist) if dist in STACK else self.extra(dist, pin)
            if need:
                self.pip('--no-deps', f'{dist}=={pin}')
            todo = self.missing(imports)
            if todo:
                say(f'missing, imported by {dist}: {" ".join(todo)}')
                self.added += todo
                self.pip(*todo, SETUPTOOLS)
        todo = self.missing(EXTRAS)
        if todo:
            say(f'missing, for the tools and tests: {" ".join(todo)}')
            self.added += todo
            self.pip(*todo, SETUPTOOLS)
        self.steps_mm()
        if self.dry_run:
            say('dry run: nothing was changed')
            return
        say(f'kept: {", ".join(self.kept) or "nothing"}; installed: '
            f'{", ".join(self.added) or "nothing"}')
        subprocess.run([sys.executable, '-c', READY], cwd='/', check=True)

    def extra(self, dist: str, pin: str) -> bool:
        version = installed(dist)
        if version is not None:
            self.keep(dist, version)
            return False
        say(f'{dist}: not installed: installing {dist}=={pin}')
        self.added.append(f'{dist}=={pin}')
        return True

    def mmcv(self) -> None:
        torch = installed('torch')
        if self.dry_run and (torch is None or any(
                a.startswith('torch==') for a in self.added)):  # torch comes first
            say('mmcv: decided once torch is installed (its compiled ops must load '
                'with that torch)')
            return
        if not self.stack_member('mmcv', check=mmcv_ops_load):
            return
        pin = f"mmcv=={STACK['mmcv'][1]}"
        say(f'{pin}: building from source against torch {torch}, with the compiled '
            f'ops ({MMCV_BUILD})')
        tools = self.missing(BUILD_TOOLS)
        if tools:
            self.pip(*tools, SETUPTOOLS)
        replace = ['--force-reinstall', '--no-deps'] if installed('mmcv') else []
        self.pip('--no-build-isolation', *replace, pin)
        if self.dry_run or mmcv_ops_load():
            return
        # a cached wheel built against another torch: build it again
        say('the compiled ops do not load: rebuilding without the wheel cache')
        self.pip('--no-build-isolation', '--force-reinstall', '--no-deps',
                 '--no-cache-dir', pin)
        if not mmcv_ops_load():
            raise SystemExit('[install] mmcv was built but `import mmcv.ops` fails; '
                             'see docs/install.md')

    def steps_mm(self) -> None:
        """steps_mm, editable, in the layout of ``setup.py develop``: its metadata
        (``steps_mm.egg-info``) in the repository root, found through
        ``steps-mm.egg-link`` and ``easy-install.pth`` in site-packages (so
        ``pip uninstall steps_mm`` removes it). mim finds
        a package's model index (``mim search steps_mm``) at its metadata's
        location, which a PEP 660 editable install puts in site-packages, where
        no ``steps_mm`` folder is."""
        purelib = sysconfig.get_paths()['purelib']
        # the name pip looks for (pip 23.2 knows only this spelling)
        link = osp.join(purelib, 'steps-mm.egg-link')
        pth = osp.join(purelib, 'easy-install.pth')
        pep660 = [f for f in os.listdir(purelib)
                  if f.startswith('steps_mm-') and f.endswith('.dist-info')]
        linked = osp.isfile(link) and open(link).readline().strip() == ROOT
        on_path = osp.isfile(pth) and ROOT in open(pth).read().splitlines()
        if linked and on_path and not pep660:
            say(f'steps_mm: kept, editable at {ROOT}')
        else:
            say(f'steps_mm: installing, editable at {ROOT}')
            if pep660:
                say('(replacing the PEP 660 editable install, whose metadata mim '
                    'cannot map to the sources)')
                if not self.dry_run:
                    subprocess.run([sys.executable, '-m', 'pip', 'uninstall', '-y',
                                    '-q', 'steps_mm'], check=True)
        if self.dry_run:
            return
        # always: refreshes the metadata when setup.py or the version changed
        subprocess.run([sys.executable, 'setup.py', '-q', 'egg_info'], cwd=ROOT,
                       check=True, capture_output=True)
        if not linked:
            with open(link, 'w') as f:
                f.write(f'{ROOT}\n.')
        if not on_path:
            with open(pth, 'a') as f:
                f.write(f'{ROOT}\n')


READY = '''
import importlib.metadata as m, steps_mm, torch
print('[install] ready: steps_mm', steps_mm.__version__, 'at',
      steps_mm.__path__[0], '| torch', torch.__version__, '| ' + ' | '.join(
          f'{d} {m.version(d)}' for d in ('mmcv', 'mmengine', 'mmdet',
                                           'mmsegmentation', 'mmpretrain')))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dry-run', action='store_true',
                        help='print the decisions, install nothing')
    Installer(parser.parse_args().dry_run).run()


if __name__ == '__main__':
    main()
