"""Every ``python tools/...`` command that README.md and docs/ show runs as
written, at a small size: the tool's own size options (image size, batch,
repeats, steps) are set small, outputs go to a temporary directory, and
alternatives (``a|b|c``) and placeholders (``SRC``, ``DST``) are expanded over
what they stand for. The research tools and the demo are run by their own tests;
``--device cuda`` commands need a GPU."""
import ast
import importlib
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from itertools import product

import pytest
import torch

from steps_mm.models import FAMILIES

from conftest import ROOT
DOCS = [osp.join(ROOT, 'README.md')] + sorted(
    osp.join(folder, f) for folder, _, files in os.walk(osp.join(ROOT, 'docs'))
    for f in files if f.endswith('.md'))
#: tools whose commands other tests run (research runs, the demo, results)
COVERED_ELSEWHERE = {'demo.py', 'depth_study.py', 'shortcut_ratio.py', 'probe_paths.py',
                     'results_table.py', 'frozen_probes.py', 'selection_demo.py'}
#: benchmark options that only add measurements to a run
ADDITIVE = {'--breakdown', '--count-ops'}


def documented_commands(paths=DOCS):
    """``(file, command)`` of each distinct ``python tools/X.py ...`` command in
    the fenced code blocks and inline code of ``paths``."""
    found = {}
    for path in paths:
        text = open(path).read()
        blocks = re.findall(r'```[a-z]*\n(.*?)```', text, re.S)
        lines = [line for block in blocks
                 for line in block.replace('\\\n', ' ').splitlines()]
        inline = re.sub(r'```.*?```', '', text, flags=re.S)
        # inline: `python tools/x.py ...`, or `tools/x.py ARGS` (not a bare name)
        lines += ['python ' + c.replace('python ', '', 1) for c in re.findall(
            r'`(python tools/[^`]+|tools/\w+\.py [^`]+)`', inline)]
        for line in lines:
            start = line.find('python tools/')
            tool = line[start:].split()[1] if start >= 0 else ''
            if osp.isfile(osp.join(ROOT, tool)) and tool.endswith('.py'):
                command = ' '.join(shlex.split(line[start:], comments=True))
                found.setdefault(command, osp.relpath(path, ROOT))
    return sorted((path, command) for command, path in found.items())


def expand(argv):
    """Each concrete argv of a documented one: ``[...]`` groups are left out,
    ``a|b`` gives one argv per alternative."""
    kept, depth = [], 0
    for token in argv:
        depth += token.count('[')
        if not depth:
            kept.append(token)
        depth -= token.count(']')
    return [list(choice) for choice in product(*(t.split('|') for t in kept))]


def set_option(argv, option, *values):
    """``argv`` with ``option`` given ``values`` (replaced if present)."""
    if option in argv:
        i = argv.index(option)
        return argv[:i] + [option, *values] + argv[i + 1 + len(values):]
    return argv + [option, *values]


def small(tool, argv):
    """A documented command at a small size, its outputs going to ``OUT`` (a
    placeholder for a temporary directory, as ``SRC``/``DST``); options that set
    only the size or the number of timings are replaced, so that commands that
    differ only in those run once."""
    if tool == 'benchmark.py':
        config = 'config' in argv
        for option, value in (('--threads', '1'), ('--batch', '2' if config else '1'),
                              ('--size', '64'), ('--repeats', '1'), ('--warmup', '0'),
                              ('--out', 'OUT/bench')):
            argv = set_option(argv, option, value)
    elif tool == 'flops.py':
        argv = set_option(argv, '--shape', '64', '64')
        if '--out' in argv:
            argv = set_option(argv, '--out', 'OUT')
    elif tool == 'gpu_hours.py':
        for option, value in (('--batch', '2'), ('--steps', '1'), ('--warmup', '0'),
                              ('--out', 'OUT')):
            argv = set_option(argv, option, value)
    elif tool == 'check_export.py':  # one model at one small size: every path still runs
        for option, value in (('--models', 'ConvNeXt-T'), ('--sizes', '64x96'),
                              ('--out', 'OUT')):
            argv = set_option(argv, option, value)
    elif tool in ('fidelity_table.py', 'model_table.py') and '--out' in argv:
        argv = set_option(argv, '--out', 'OUT/table.md')
    return argv


def convert_sources(argv, tmp):
    """SRC: a checkpoint of the family's default arch in mmpretrain's names
    (``backbone.`` keys); DST: where the converted one goes."""
    family = argv[argv.index('--family') + 1]
    cls = FAMILIES[family]
    model = cls.for_checkpoint(cls.arch_from_text(argv[argv.index('--arch') + 1])
                               if '--arch' in argv else None)
    src = str(tmp / f'{family}-src.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               model.state_dict().items()}}, src)
    return [src if t == 'SRC' else str(tmp / f'{family}.pth') if t == 'DST' else t
            for t in argv]


def recorded(argv) -> bool:
    """A command that regenerates a run recorded under docs/ (minutes to hours
    by design): checked against its record instead of run."""
    return '--out' in argv and argv[argv.index('--out') + 1].startswith('docs/')


def collect():
    """``(runs, records)``: the distinct small commands to run, as
    ``(where shown, argv)``, and the recorded runs' commands (see ``recorded``)."""
    runs, records = {}, []
    for path, command in documented_commands():
        for argv in expand(shlex.split(command)):
            tool = osp.basename(argv[1])
            if tool in COVERED_ELSEWHERE:
                continue
            if recorded(argv):
                records.append((path, argv))
            else:
                runs.setdefault(tuple(small(tool, argv)), path)
    # a benchmark command is covered by the same one with extra measurements
    covered = {a for a in runs for b in runs
               if set(a) < set(b) and set(b) - set(a) <= ADDITIVE}
    return [(path, list(argv)) for argv, path in runs.items() if argv not in covered], \
        records


CASES, RECORDS = collect()


def test_the_docs_show_commands_of_the_tools():
    """The collection above found commands (an empty list would pass silently)."""
    assert 'tools/benchmark.py' in {argv[1] for _, argv in CASES}


@pytest.mark.parametrize('path, argv', RECORDS,
                         ids=[a[a.index('--out') + 1] for _, a in RECORDS])
def test_recorded_benchmark_runs_match_their_command(path, argv):
    """The command shown beside a recorded run is the one that made it: the
    options it gives are those in the record, and its models exist."""
    from steps_lab import benchmark
    assert argv[1] == 'tools/benchmark.py', f'{path}: {argv}'
    out = argv[argv.index('--out') + 1]
    record = json.load(open(osp.join(ROOT, out + '.json')))['args']
    for ext in ('.md', '.png'):
        assert osp.isfile(osp.join(ROOT, out + ext)), out + ext
    flags = {'--breakdown': ('breakdown', True), '--no-memory': ('memory', False),
             '--no-train': ('train', False), '--count-ops': ('count_ops', True)}
    i = 2
    while i < len(argv):
        if argv[i] in flags:
            key, value = flags[argv[i]]
            assert record[key] == value, (path, argv[i])
            i += 1
            continue
        key, value = argv[i][2:].replace('-', '_'), argv[i + 1]
        if key != 'out':
            assert str(record[key]) == value, (path, argv[i], record[key])
        i += 2
    for name in (record['models'] or '').replace(';', ',').split(','):
        if name:
            benchmark.check_name(name, record['mode'])


@pytest.mark.slow
@pytest.mark.parametrize('path, argv', CASES, ids=[' '.join(a[1:]) for _, a in CASES])
def test_documented_command_runs(path, argv, tmp_path):
    if 'cuda' in argv and not torch.cuda.is_available():
        pytest.skip('needs CUDA')
    if '--write-metafile' in argv:
        pytest.skip("rewrites the package's model index (test_flops checks that it is "
                    "in sync with configs/)")
    tool = osp.basename(argv[1])
    run = [t.replace('OUT', str(tmp_path)) for t in argv]
    if tool == 'convert_checkpoint.py':
        run = convert_sources(run, tmp_path)
    out = subprocess.run([sys.executable] + run[1:], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, f'{path}: {" ".join(run)}\n{out.stderr[-3000:]}'
    if tool == 'benchmark.py':
        for ext in ('.md', '.json', '.png'):
            assert osp.getsize(tmp_path / f'bench{ext}') > 0
        assert '| model | baseline | precision |' in out.stdout
        if '--breakdown' in argv:
            assert 'ms per step by op category' in out.stdout
    elif tool == 'flops.py':
        assert 'GMACs' in out.stdout
        if '--all' not in argv:  # one config: the breakdown by part and step
            assert '| part (1x3x64x64) | GMACs | params (M) |' in out.stdout
            assert 'backbone' in out.stdout and 'step 2' in out.stdout
        if '--out' in argv:
            assert json.load(open(tmp_path / 'flops.json'))
    elif tool == 'fidelity_table.py':
        assert 'rows within tolerance' in out.stdout and '✗ |' not in out.stdout
    elif tool == 'convert_checkpoint.py':
        assert 'wrote ' in out.stdout and 'matched ' in out.stdout


@pytest.mark.slow
def test_fidelity_check_fails_a_row_out_of_tolerance():
    """ResNet-18 has 11.69M parameters, the paper prints 11.7M."""
    out = subprocess.run([sys.executable, 'tools/fidelity_table.py', '--only',
                          'ResNet-18', '--params-tol', '0'], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr[-2000:]
    assert '0/2 rows within tolerance' in out.stdout
    assert 'out of tolerance: ResNet-18, Steps-ResNet-18' in out.stdout


TOOLS = sorted(f for f in os.listdir(osp.join(ROOT, 'tools')) if f.endswith('.py'))


@pytest.mark.parametrize('tool', TOOLS)
def test_tools_are_thin_clis(tool):
    """A tool imports the installed package (no sys.path edits) and stays a
    CLI over library code (about 200 lines at most)."""
    path = osp.join(ROOT, 'tools', tool)
    source = open(path).read()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == 'path' and \
                isinstance(node.value, ast.Name) and node.value.id == 'sys':
            raise AssertionError(f'tools/{tool}:{node.lineno} uses sys.path')
    assert len(source.splitlines()) <= 200, f'tools/{tool} is a library, not a CLI'


@pytest.mark.parametrize('tool', TOOLS)
def test_tools_import_names_that_exist(tool):
    """Every steps_mm / steps_lab name a tool imports, inside its functions too,
    exists: a late import of a moved module (``from steps_mm import results``
    after the lab left the plugin) fails only when that branch runs."""
    missing = []
    for node in ast.walk(ast.parse(open(osp.join(ROOT, 'tools', tool)).read())):
        if isinstance(node, ast.Import):
            modules = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            modules = [(node.module, a.name) for a in node.names]
        else:
            continue
        for module, name in modules:
            if module.split('.')[0] not in ('steps_mm', 'steps_lab'):
                continue
            try:
                found = importlib.import_module(module)
                if name is not None and not hasattr(found, name):
                    importlib.import_module(f'{module}.{name}')  # a submodule
            except ImportError:
                missing.append(f'tools/{tool}:{node.lineno}: {module}'
                               + (f' has no {name}' if name else ''))
    assert not missing, missing
