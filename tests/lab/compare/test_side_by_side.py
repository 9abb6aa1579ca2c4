"""The demo's comparisons (``steps_lab.demo.chain.PAIRS``): each pair's generated
configs are twins trained like for like, with the family's demo recipe on both
sides; the compare tool refuses options that need --compare; a parallel compare
makes mim's cache folder before its two mim processes race to create it."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from conftest import ROOT
from steps_lab.demo.chain import PAIRS, STAGES, ChainRecipe, stage_config
from steps_lab.demo.data import CLASSES
from steps_lab.results import twins


def pretrain_models():
    import steps_mm.pretraining  # noqa: F401  (mmpretrain's registries)
    from mmpretrain.registry import MODELS
    return MODELS


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=() if n == 'resnet-50' else pytest.mark.slow) for n in PAIRS])
def test_each_pair_runs_like_for_like_with_its_family_recipe(name, demo_data, tmp_path):
    steps, twin = PAIRS[name]
    recipe = ChainRecipe()
    for stage in STAGES:
        configs = []
        for model in (steps, twin):
            job_dir = str(tmp_path / model.name / stage)
            path = stage_config(model, stage, demo_data, job_dir, recipe, seed=3,
                                backbone_checkpoint=None if stage == 'pretrain'
                                else osp.join(job_dir, 'epoch_12.pth'))
            configs.append(Config.fromfile(path, import_custom_modules=False))
        assert [twins.layout(c) for c in configs] == ['steps', 'sequential']
        assert twins.differences(*configs) == [], (name, stage)
        for cfg in configs:
            optimizer = cfg.optim_wrapper.optimizer
            assert optimizer.lr == (3e-4 if stage == 'pretrain' else 4e-4)
            if steps.optimizer:  # the stock SGD replaced, nothing of it left
                assert optimizer.type == 'AdamW' and 'momentum' not in optimizer
            assert cfg.randomness.seed == 3
            assert cfg.train_cfg.val_begin > cfg.train_cfg.get(
                'max_iters', cfg.train_cfg.get('max_epochs'))
            if stage == 'det':
                assert cfg.model.test_cfg.rpn.max_per_img == 300
            if stage == 'pretrain':
                backbone = cfg.model.backbone
                for key, value in steps.pretrain_backbone.items():
                    assert backbone[key] == value
                # the classifier builds: no recipe key is left dangling
                assert pretrain_models().build(cfg.model).head.num_classes == len(CLASSES)


def test_every_pair_names_shipped_configs_of_one_family():
    for name, (steps, twin) in PAIRS.items():
        assert twin.name == steps.name.replace('Steps-', '')
        for model in (steps, twin):
            for stage in STAGES:
                assert osp.exists(model.config(stage)), (name, model.name, stage)


@pytest.mark.parametrize('argv', [['--model', 'swin-t']] + [
    pytest.param(a, marks=pytest.mark.slow)  # ~4 s each: one in the fast lane
    for a in (['--seeds', '0', '1'], ['--serial'], ['--out', 'x'])])
def test_compare_options_need_compare(argv):
    done = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'demo.py'), *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert f'{argv[0]} needs --compare' in done.stderr


def test_reuse_names_the_run_it_cannot_find(tmp_path):
    from steps_lab.compare.side_by_side import read_compare
    (tmp_path / 'seed0' / 'steps' / 'pretrain').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'Steps-ResNet-50 \(seed 0\) in .*'
                       r'seed0/steps/det: run --compare --model resnet-50'):
        read_compare('resnet-50', str(tmp_path), ChainRecipe(), [0])


def test_a_summary_made_again_keeps_the_training_runs_time_and_claims_none_it_lacks(tmp_path):
    from steps_lab.compare.side_by_side import recorded_run
    unknown = dict(command=None, wall_seconds=None)
    assert recorded_run(str(tmp_path), 'swin-t', [0, 1]) == unknown
    (tmp_path / 'swin-t.json').write_text(
        '{"seeds": [0, 1, 2], "command": "python tools/demo.py --compare", '
        '"wall_seconds": 3844}')
    assert recorded_run(str(tmp_path), 'swin-t', [0, 1]) == unknown
    assert recorded_run(str(tmp_path), 'swin-t', [0, 1, 2]) == dict(
        command='python tools/demo.py --compare', wall_seconds=3844)


def test_a_parallel_compare_makes_mims_cache_before_either_side_starts(tmp_path,
                                                                        monkeypatch):
    """On a fresh machine (no ``~/.cache/mim``) the folder is there before the
    twins' chains, and so their ``mim`` processes, start."""
    from steps_lab.compare import side_by_side
    monkeypatch.setenv('HOME', str(tmp_path))
    cache = tmp_path / '.cache' / 'mim'
    started = []

    def run_chain(model, *args, **kwargs):
        started.append((model.name, cache.is_dir()))
        return {}

    monkeypatch.setattr(side_by_side, 'run_chain', run_chain)
    side_by_side.run_compare('resnet-50', str(tmp_path / 'data'), str(tmp_path / 'work'),
                             ChainRecipe(), echo=lambda line: None)
    assert sorted(started) == [('ResNet-50', True), ('Steps-ResNet-50', True)]


#: ``import mim`` as it goes when two mim processes start together on a fresh
#: machine and the other one creates ``~/.cache/mim`` between this one's
#: ``osp.exists`` and its ``os.makedirs`` (the race, made certain)
RACED_MIM_IMPORT = '''
import os, os.path as osp
cache, makedirs = osp.join(osp.expanduser('~'), '.cache', 'mim'), os.makedirs
def the_other_process_first(path, *args, **kwargs):
    if osp.abspath(path) == cache:
        makedirs(path, exist_ok=True)
    return makedirs(path, *args, **kwargs)
os.makedirs = the_other_process_first
import mim
'''


@pytest.mark.slow  # an import probe: three mim imports, ~4 s
def test_mim_processes_started_together_both_start_once_prepared(tmp_path, monkeypatch):
    """Three raced mim imports at once: with a fresh HOME one dies as the bug did;
    with ``prepare_parallel_mim`` run first for their HOME, both start."""
    from steps_lab.compare.side_by_side import prepare_parallel_mim
    fresh, prepared = tmp_path / 'fresh', tmp_path / 'prepared'
    fresh.mkdir()
    prepared.mkdir()
    monkeypatch.setenv('HOME', str(prepared))
    assert prepare_parallel_mim() == str(prepared / '.cache' / 'mim')

    def start(home):
        return subprocess.Popen([sys.executable, '-c', RACED_MIM_IMPORT],
                                env=dict(os.environ, HOME=str(home)), cwd=str(tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [start(fresh), start(prepared), start(prepared)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert procs[0].returncode == 1
    assert f"FileExistsError: [Errno 17] File exists: '{fresh}/.cache/mim'" in errors[0]
    assert [p.returncode for p in procs[1:]] == [0, 0], [e[-2000:] for e in errors[1:]]
