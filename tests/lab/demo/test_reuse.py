"""The chain reuses a finished stage instead of training it again when nothing
measured would change (``steps_lab.demo.chain.stage_action``): the same generated
config (as the Runner dumped it), its checkpoint and a test of it there, and no
input newer than the checkpoint. A finished run of another config is refused,
an unfinished one trained over. The slow tests run the real chain at test size
again on the ``steps_chain`` fixture's job dirs."""
import json
import os
import os.path as osp
import shutil

import pytest

from steps_lab.demo import chain
from steps_lab.demo.chain import (PAIRS, ChainRecipe, StageConflict, plan_stage,
                                  recorded_seconds, stage_action, stage_config)

MODEL = PAIRS['resnet-50'][0]  # its ImageNet config resolves fastest


def finished_stage(tmp_path, recipe, seed=0):
    """A pretraining job dir as the chain leaves it, the training and test
    written as mmengine writes them (the dump: the generated config itself, which
    resolves to the same), and its data built before; returns (data, job dir, cfg)."""
    data, job_dir = tmp_path / 'data', tmp_path / 'pretrain'
    (data / 'imagenet').mkdir(parents=True)
    stamp = data / 'imagenet' / '.built-v2-64-64-112-1'
    stamp.touch()
    cfg = stage_config(MODEL, 'pretrain', str(data), str(job_dir), recipe, seed)
    (job_dir / 'train').mkdir()
    shutil.copy(cfg, job_dir / 'train')
    checkpoint = job_dir / 'train' / f'epoch_{recipe.pretrain_epochs}.pth'
    checkpoint.touch()
    session = job_dir / 'test' / '20260101_000000'
    (session / 'vis_data').mkdir(parents=True)
    (session / 'vis_data' / 'config.py').write_text(f'load_from = {str(checkpoint)!r}\n')
    (session / '20260101_000000.json').write_text('{"accuracy/top1": 50.0}')
    (job_dir / 'test' / 'predictions.pkl').touch()
    for age, path in enumerate((stamp, checkpoint, session / '20260101_000000.json')):
        os.utime(path, (1e9 + age, 1e9 + age))  # data, then training, then test
    return str(data), str(job_dir), cfg


def test_a_finished_stage_of_the_same_config_is_reused(tmp_path):
    recipe = ChainRecipe(pretrain_epochs=2)
    data, job_dir, cfg = finished_stage(tmp_path, recipe)
    assert stage_action(cfg, job_dir, 'epoch_2.pth') == 'reuse'
    # planned as the chain plans it: the config generated aside, the dir untouched
    before = sorted(os.listdir(job_dir))
    assert plan_stage(MODEL, 'pretrain', data, job_dir, recipe, 0) == 'reuse'
    assert sorted(os.listdir(job_dir)) == before


def test_a_finished_stage_of_another_config_is_refused_naming_what_differs(tmp_path):
    data, job_dir, _ = finished_stage(tmp_path, ChainRecipe(pretrain_epochs=2))
    with pytest.raises(StageConflict, match=r'(?s)holds a finished run of another config.*'
                                            r'randomness.seed: 0 -> 1.*another --work-dir'):
        plan_stage(MODEL, 'pretrain', data, job_dir, ChainRecipe(pretrain_epochs=2), 1)
    # unfinished (no checkpoint): trained over
    os.remove(osp.join(job_dir, 'train', 'epoch_2.pth'))
    assert plan_stage(MODEL, 'pretrain', data, job_dir, ChainRecipe(pretrain_epochs=2),
                      1) == 'train'


def test_a_stage_stopped_before_its_test_is_only_tested(tmp_path):
    data, job_dir, cfg = finished_stage(tmp_path, ChainRecipe(pretrain_epochs=2))
    os.remove(osp.join(job_dir, 'test', 'predictions.pkl'))  # the intervals need it
    assert stage_action(cfg, job_dir, 'epoch_2.pth') == 'test'


def test_a_test_of_an_older_checkpoint_does_not_count(tmp_path):
    data, job_dir, cfg = finished_stage(tmp_path, ChainRecipe(pretrain_epochs=2))
    os.utime(osp.join(job_dir, 'train', 'epoch_2.pth'), (2e9, 2e9))  # trained again
    assert stage_action(cfg, job_dir, 'epoch_2.pth') == 'test'


def test_a_stage_whose_inputs_changed_since_is_trained_again(tmp_path):
    data, job_dir, cfg = finished_stage(tmp_path, ChainRecipe(pretrain_epochs=2))
    stamp = osp.join(data, 'imagenet', '.built-v2-64-64-112-1')
    os.utime(stamp, (2e9, 2e9))  # the data were built again after the training
    assert stage_action(cfg, job_dir, 'epoch_2.pth', [stamp]) == 'train'
    assert plan_stage(MODEL, 'pretrain', data, job_dir, ChainRecipe(pretrain_epochs=2),
                      0) == 'train'


def test_the_recorded_seconds_or_the_files_times(tmp_path):
    (tmp_path / 'stage.json').write_text('{"train_seconds": 12.5, "test_seconds": 3.0}')
    assert recorded_seconds(str(tmp_path)) == dict(train_seconds=12.5, test_seconds=3.0)
    os.remove(tmp_path / 'stage.json')
    for name, when in (('config.py', 100), ('train.log', 160), ('test.log', 175)):
        (tmp_path / name).touch()
        os.utime(tmp_path / name, (when, when))
    assert recorded_seconds(str(tmp_path)) == dict(train_seconds=60, test_seconds=15)


# ---- the real chain, run again ---------------------------------------------------
def _mim_calls(monkeypatch):
    calls = []
    real = chain.run_logged

    def run_logged(cmd, log_file, *args, **kwargs):
        calls.append((cmd[3], log_file))  # train | test
        return real(cmd, log_file, *args, **kwargs)

    monkeypatch.setattr(chain, 'run_logged', run_logged)
    return calls


@pytest.mark.slow
def test_the_chain_run_again_trains_nothing_and_reads_the_same_metrics(
        steps_chain, demo_data, monkeypatch):
    from conftest import small_recipe
    work_dir = osp.dirname(steps_chain['pretrain'].job_dir)
    files = {key: [osp.getmtime(p) for p in (run.checkpoint,
                                             osp.join(run.job_dir, 'train.log'),
                                             osp.join(run.job_dir, 'test.log'))]
             for key, run in steps_chain.items()}
    calls, lines = _mim_calls(monkeypatch), []
    again = chain.run_chain(chain.STEPS, demo_data, work_dir, small_recipe(),
                            stages=('det', 'seg'), echo=lines.append)
    assert calls == []
    assert [line for line in lines if 'reusing' in line] == [
        f'[demo] Steps-ConvNeXt-T: reusing {key} in {run.job_dir}'
        for key, run in steps_chain.items()]
    for key, run in steps_chain.items():
        assert again[key].reused and again[key].job_dir == run.job_dir
        assert again[key].metrics == run.metrics
        assert again[key].train_seconds == pytest.approx(run.train_seconds, abs=0.1)
        assert [osp.getmtime(p) for p in (again[key].checkpoint,
                                          osp.join(run.job_dir, 'train.log'),
                                          osp.join(run.job_dir, 'test.log'))] == files[key]


@pytest.mark.slow
def test_a_changed_schedule_trains_its_stage_on_the_pretraining_it_reuses(
        steps_chain, demo_data, monkeypatch):
    from conftest import small_recipe
    work_dir = osp.dirname(steps_chain['pretrain'].job_dir)
    recipe = small_recipe()
    recipe.det_iters = 3
    calls = _mim_calls(monkeypatch)
    runs = chain.run_chain(chain.STEPS, demo_data, work_dir, recipe, stages=('det', ),
                           echo=lambda line: None)
    assert runs['pretrain'].reused and not runs['det'].reused
    assert runs['det'].job_dir == osp.join(work_dir, 'det_3it_pre2ep')
    assert [c for c, _ in calls] == ['train', 'test']
    assert runs['det'].checkpoint.endswith('iter_3.pth') and osp.exists(runs['det'].checkpoint)
    with open(osp.join(runs['det'].job_dir, 'train.log')) as f:  # from that pretraining
        assert steps_chain['pretrain'].checkpoint in f.read()
    assert json.load(open(osp.join(runs['det'].job_dir, 'stage.json')))['train_seconds'] > 0
    # a change the dir's name does not record: refused before anything trains
    recipe.det_options = dict(num_proposals=100)
    calls.clear()
    with pytest.raises(StageConflict, match=r'test_cfg.rpn.max_per_img: 300 -> 100'):
        chain.run_chain(chain.STEPS, demo_data, work_dir, recipe, stages=('det', ),
                        echo=lambda line: None)
    assert calls == []


def test_a_stage_an_earlier_chain_left_under_the_old_name_is_found_there(tmp_path):
    """Before ``stage_dir_name``, every schedule's stages went to ``pretrain``,
    ``det`` and ``seg``: such a dir holding this schedule's checkpoint is read
    (``--reuse``) and reused where its config is this one."""
    from steps_lab.demo.chain import finished_job_dir, plan_chain
    (tmp_path / 'det' / 'train').mkdir(parents=True)
    (tmp_path / 'det' / 'train' / 'iter_540.pth').touch()
    assert finished_job_dir(str(tmp_path), 'det', ChainRecipe(det_iters=540)) == str(
        tmp_path / 'det')
    assert finished_job_dir(str(tmp_path), 'det', ChainRecipe(det_iters=360)) == str(
        tmp_path / 'det_360it')
    assert finished_job_dir(str(tmp_path), 'det', ChainRecipe(det_iters=540),
                            head='cascade') == str(tmp_path / 'det_cascade_540it')
    data, job_dir, _ = finished_stage(tmp_path / 'work', ChainRecipe(pretrain_epochs=2))
    assert osp.basename(job_dir) == 'pretrain'  # as an earlier chain named it
    plan, = plan_chain(MODEL, data, str(tmp_path / 'work'), ChainRecipe(pretrain_epochs=2),
                       stages=())
    assert (plan.job_dir, plan.action) == (job_dir, 'reuse')
    # another config there: not this stage's; it trains in its own dir
    plan, = plan_chain(MODEL, data, str(tmp_path / 'work'), ChainRecipe(pretrain_epochs=2),
                       seed=1, stages=())
    assert (plan.job_dir, plan.action) == (str(tmp_path / 'work' / 'pretrain_2ep'), 'train')
