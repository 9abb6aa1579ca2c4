"""The demo's comparisons (``steps_lab.demo.chain.PAIRS``): each pair's generated
configs are twins trained like for like, with the family's demo recipe on both
sides; the compare tool refuses options that need --compare."""
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
