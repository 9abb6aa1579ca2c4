"""The research tools on tiny models: models initialised as the library's, the
training recipe, the job runner, shortcut ratios against hand-computed values,
path probes, and each tool's --quick mode end to end (CLI, JSON, plots)."""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch
import torch.nn as nn

from steps_mm.models import ResidualBlock, StepsStage, StepsViT
from steps_lab.research import cli, depth, models, path_probes, runner, shortcut, train

from conftest import ROOT


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the tools train: these tiny models only lose from
    more (the threads wait on each other between the small ops)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Double(ResidualBlock):
    """``x + x``: each block doubles its input, so gamma is known exactly."""
    layer_count = 1

    def residual(self, x):
        return x


def doubling_stage(spec, parallel=False):
    return StepsStage(spec, lambda width, k: Double(), parallel=parallel)


def gammas(stage, x):
    return [r['gamma'] for r in shortcut.shortcut_ratios(stage, x)]


def test_shortcut_ratio_sequential_and_parallel_by_hand():
    x = torch.randn(4, 6, 5, 5)
    # sequential: z_l = 2^l z_0; parallel: z_l = (l + 1) z_0
    assert gammas(doubling_stage([(6, 3)]), x) == pytest.approx([1 / 2, 1 / 4, 1 / 8])
    assert gammas(doubling_stage([(6, 3)], parallel=True), x) == \
        pytest.approx([1 / 2, 1 / 3, 1 / 4])


def test_shortcut_ratio_steps_uses_the_running_channels():
    x = torch.randn(4, 6, 5, 5)
    stage = doubling_stage([(2, 1), (4, 2), (6, 0)])
    # block 0 doubles x[:2]; blocks 1, 2 double the step input cat(2 x[:2], x[2:4])
    step_input = torch.cat([2 * x[:, :2], x[:, 2:4]], 1)
    after = [2 * x[:, :2], 2 * step_input, 4 * step_input]
    records = shortcut.shortcut_ratios(stage, x)
    # the network-input reading: z_0 on the channels of the running feature
    assert [r['gamma'] for r in records] == pytest.approx(
        [(x[:, :c].std() / a.std()).item() for c, a in zip((2, 4, 4), after)],
        rel=1e-5)
    # the step reading: z_0 is the step's own input, so it restarts per step
    assert [r['gamma_step'] for r in records] == pytest.approx([.5, .5, .25],
                                                               rel=1e-5)
    assert [(r['step'], r['width']) for r in records] == [(0, 2), (1, 4), (1, 4)]
    assert [r['depth'] for r in records] == [0., .5, 1.]


def test_shortcut_ratio_readings_agree_without_steps():
    x = torch.randn(4, 6, 5, 5)
    for parallel in (False, True):
        records = shortcut.shortcut_ratios(doubling_stage([(6, 3)], parallel), x)
        assert [r['gamma'] for r in records] == [r['gamma_step'] for r in records]


@pytest.mark.parametrize('layout', ['sequential', 'steps', 'parallel'])
def test_research_models_are_initialised_as_the_backbone(layout):
    """A research DeiT-like model has the init of the StepsViT it is made of
    (truncated normal, std 0.02), not PyTorch's per-layer default (std
    1/sqrt(3 fan_in): 0.10 at width 32)."""
    model = models.deit_like(32, 8, layout)
    torch.manual_seed(1)
    reference = StepsViT(models.deit_like_arch(32, 8, layout), layout,
                         img_size=28, patch_size=7, in_channels=1)
    reference.init_weights()

    def linear_weights(module):
        return torch.cat([m.weight.flatten() for m in module.modules()
                          if isinstance(m, nn.Linear)])
    ours, theirs = linear_weights(model.backbone), linear_weights(reference)
    assert ours.numel() == theirs.numel()
    assert ours.std().item() == pytest.approx(theirs.std().item(), rel=.05)
    assert ours.std().item() == pytest.approx(.02, rel=.05)
    for q in (.01, .25, .5, .75, .99):  # the same distribution, not only its std
        assert torch.quantile(ours, q).item() == pytest.approx(
            torch.quantile(theirs, q).item(), abs=2e-3)
    biases = [m.bias for m in model.modules() if isinstance(m, nn.Linear)]
    assert all(b.abs().max() == 0 for b in biases)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(torch.all(m.weight == 1) for m in norms)


def test_recipe_warmup_then_cosine_and_no_decay_groups():
    recipe = train.StudyRecipe(epochs=30, lr=1e-3, min_lr=1e-5, warmup_epochs=1)
    total, warmup = train.steps_of(recipe, num_samples=640)  # 10 steps an epoch
    assert (total, warmup) == (300, 10)
    lrs = [train.lr_at(step, total, warmup, recipe) for step in range(total)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))  # linear warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine decay
    assert lrs[155] == pytest.approx((1e-3 + 1e-5) / 2, rel=.02)  # half way
    assert lrs[-1] == pytest.approx(1e-5, rel=.01)
    model = models.deit_like(32, 4, 'steps')
    decay, no_decay = train.param_groups(model, .05)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay['weight_decay'] == .05 and no_decay['weight_decay'] == 0
    assert all(p.ndim == 2 or p.ndim == 4 for p in decay['params'])
    skipped = {names[id(p)].rsplit('.', 1)[-1] for p in no_decay['params']}
    assert skipped == {'bias', 'weight', 'pos_embed', 'cls_token'}  # norms: weight
    assert len(decay['params']) + len(no_decay['params']) == len(names)


def test_training_fits_a_small_set_and_refuses_divergence():
    from steps_lab.research.data import mnist_subset
    (x, y), _ = mnist_subset(200, 100)
    x, y = x[:100], y[:100]
    torch.manual_seed(0)
    model = models.deit_like(32, 2, 'sequential')
    before = train.evaluate(model, x, y)[1]
    train.train(model, x, y, train.StudyRecipe(epochs=100, batch_size=25, lr=2e-3))
    assert before < .3 and train.evaluate(model, x, y)[1] > .95
    with pytest.raises(FloatingPointError, match='lower the learning rate'):
        train.train(models.deit_like(32, 2, 'sequential'), x, y,
                    train.StudyRecipe(epochs=1, lr=1e9, clip_grad=0, warmup_epochs=0))


def test_fit_records_a_learning_curve_without_changing_the_training():
    spec = dict(kind='deit_like', width=32, blocks=4, layout='steps',
                drop_path_rate=.1)
    recipe = train.StudyRecipe(epochs=2, warmup_epochs=.5, batch_size=100)
    quiet = lambda fraction, message: None  # noqa: E731
    _, plain = train.fit(spec, recipe, 0, 300, 100, quiet)
    _, curved = train.fit(spec, recipe, 0, 300, 100, quiet, curve_train=50)
    assert 'history' not in plain and curved['curve_train'] == 50
    for key in ('train_loss', 'train_acc', 'val_loss', 'val_acc', 'steps'):
        assert curved[key] == plain[key]  # evaluating did not change the training
    history = curved['history']
    assert [h['epoch'] for h in history] == [1, 2]  # one entry per epoch
    assert [h['step'] for h in history] == [3, 6]
    for h in history:
        assert 0 <= h['train_acc'] <= 1 and 0 <= h['val_acc'] <= 1
        assert h['loss'] > 0 and 0 < h['lr'] <= recipe.lr
    assert history[-1]['val_acc'] == plain['val_acc']  # the same test digits
    # a fractional last epoch still gets its entry
    _, short = train.fit(spec, recipe.with_(epochs=1.5), 0, 300, 100, quiet,
                         curve_train=50)
    assert [h['epoch'] for h in short['history']] == [1, 4 / 3]  # 4 steps of 3


def test_curve_flatness_settling_and_t_interval_by_hand():
    epochs = list(range(1, 11))
    rising = [.5, .6, .7, .8, .9, .95, .97, .980, .982, .984]
    start, spread = depth.tail_spread(epochs, rising)
    assert start == 8 and spread == pytest.approx(.004)  # epochs 8, 9, 10
    assert depth.tail_spread(epochs, rising[:7] + [.95, .97, .99])[1] == \
        pytest.approx(.04)
    # the tail of 3 epochs begins at 2.4: measured from epoch 2's value
    assert depth.tail_spread([1, 2, 3], [.5, .6, .8]) == pytest.approx((2.4, .2))
    assert depth.tail_spread([1.], [.5])[1] is None  # nothing before the tail
    assert depth.settled_epoch(epochs, rising) == 8  # within 0.5 points of .984
    lo, hi = depth.t_interval([.10, .12, .14])
    half = 4.302653 * .02 / 3 ** .5  # t(0.975, 2 dof) x sample std / sqrt(n)
    assert (lo, hi) == pytest.approx((.12 - half, .12 + half), rel=1e-5)
    assert depth.t_interval([.1]) is None


def seeded_job(seed: int, scale: float, report):
    report(.5, 'half way')
    return scale * torch.randn(3, generator=torch.Generator().manual_seed(seed))


def counted_job(seed: int, log: str, report):
    with open(log, 'a') as f:
        f.write(f'{seed}\n')
    return [seed, 2 * seed]


def test_runner_keeps_finished_results_and_continues(tmp_path):
    log, cache = str(tmp_path / 'calls'), str(tmp_path / 'cache')
    jobs = [runner.Job('test_studies:counted_job', dict(seed=s, log=log),
                       name=f'job {s}') for s in range(3)]
    assert runner.run_jobs(jobs[:2], cache_dir=cache, quiet=True) == [[0, 0], [1, 2]]
    assert runner.run_jobs(jobs, cache_dir=cache, quiet=True) == \
        [[0, 0], [1, 2], [2, 4]]
    assert open(log).read().split() == ['0', '1', '2']  # each job ran once
    other = runner.Job(jobs[0].fn, dict(seed=0, log=log + '2'), name='job 0')
    runner.run_jobs([other], cache_dir=cache, quiet=True)  # other arguments: run
    assert open(log + '2').read().split() == ['0']


def test_runner_runs_the_costliest_first_and_answers_in_job_order(tmp_path):
    log = str(tmp_path / 'calls')
    jobs = [runner.Job('test_studies:counted_job', dict(seed=s, log=log),
                       cost=cost) for s, cost in enumerate((1, 3, 1, 2))]
    assert runner.run_jobs(jobs, quiet=True) == [[0, 0], [1, 2], [2, 4], [3, 6]]
    assert open(log).read().split() == ['1', '3', '0', '2']  # ties in job order


def test_tool_options_set_the_config_and_its_recipe():
    cfg = cli.configure(depth.QUICK, seeds=[3, 4], width=None, epochs=2., lr=None)
    assert cfg.seeds == (3, 4) and cfg.width == depth.QUICK.width
    assert cfg.recipe.epochs == 2. and cfg.recipe.lr == depth.QUICK.recipe.lr
    assert depth.QUICK.seeds == (0,) and depth.QUICK.recipe.epochs == 1  # untouched
    with pytest.raises(TypeError, match=r"no setting \['kernels'\]"):
        cli.configure(depth.QUICK, kernels=(1,))
    assert cli.int_list('0,12') == (0, 12)
    assert cli.layout_blocks('steps:96') == ('steps', 96)
    assert cli.layout_list('sequential') == ('sequential',)
    assert cli.layout_list('sequential,steps') == ('sequential', 'steps')
    for parse, text in ((cli.int_list, '0;1'), (cli.layout_blocks, 'steps96'),
                        (cli.layout_blocks, 'deep:4'), (cli.layout_list, 'deep'),
                        (cli.layout_list, 'steps;sequential')):
        with pytest.raises(argparse.ArgumentTypeError, match='expected'):
            parse(text)


def test_progress_says_the_expected_time_once_every_worker_reported(capsys):
    jobs = [runner.Job('m:f', cost=1., name=f'job {i}') for i in range(4)]
    board = runner.ProgressBoard('study', jobs, concurrency=2)
    board.keep(0)  # a result kept from an earlier run is no report
    time.sleep(.2)  # an elapsed time that dwarfs the test's own steps
    board.update(1, .5, 'epoch 1/2')
    assert 'expected run time' not in capsys.readouterr().err
    board.update(2, .5, 'epoch 1/2')
    assert capsys.readouterr().err.count('expected run time') == 1
    # half of the two running jobs took the elapsed time e: 3 jobs take 3 e
    assert board.expected == pytest.approx((time.time() - board.start) * 3, rel=.2)
    board.update(1, 1., 'done', finished=True)
    assert 'expected run time' not in capsys.readouterr().err  # said once


@pytest.mark.slow
def test_runner_gives_the_same_results_in_processes_and_in_process():
    jobs = [runner.Job('test_studies:seeded_job', dict(seed=s, scale=s + 1.),
                       cost=s + 1, name=f'job {s}') for s in range(3)]
    inline = runner.run_jobs(jobs, workers=1, quiet=True)
    pooled = runner.run_jobs(jobs, workers=2, quiet=True)
    assert len(inline) == len(pooled) == len(jobs)
    assert all(torch.equal(a, b) for a, b in zip(inline, pooled))
    assert not torch.equal(inline[0], inline[1])  # the jobs did differ


@pytest.mark.parametrize('layout', ['sequential', 'steps', 'parallel'])
def test_shortcut_ratio_of_every_block_of_a_vit(layout):
    model = models.deit_like(32, 8, layout)
    records = shortcut.shortcut_ratios(model, torch.randn(2, 1, 28, 28))
    assert len(records) == 8
    assert all(r['gamma'] > 0 for r in records)
    # the parallel layout's wrappers are gone after recording
    assert not any('residual' in vars(b) for b in model.modules())


class Recorder(ResidualBlock):
    """Remembers its last input; its residual is zero."""
    layer_count = 1

    def residual(self, x):
        self.seen = x.detach().clone()
        return torch.zeros_like(x)


def test_probe_masks_channels_that_skip_every_block():
    stage = StepsStage([(4, 1), (8, 0)], lambda width, k: Recorder())
    with path_probes.masked_input(stage, 6, 2):
        out = stage(torch.ones(1, 8, 2, 2))
    assert out[:, 6:].abs().sum() == 0 and out[:, :6].min() == 1


def test_probe_masks_slow_and_fast_paths_of_a_stage():
    stage = StepsStage([(4, 1), (8, 1)], lambda width, k: Recorder())
    model = nn.Sequential(stage)
    x = torch.ones(1, 8, 2, 2)
    with path_probes.masked_input(stage, 0, 3):  # slow path
        out = model(x)
    assert stage[0].seen[:, :3].abs().sum() == 0 and stage[0].seen[:, 3:].min() == 1
    with path_probes.masked_input(stage, 5, 3):  # fast path: joins at step 2
        out = model(x)
    assert stage[0].seen.min() == 1  # step 1 sees channels 0..3 only
    assert stage[1].seen[:, 5:].abs().sum() == 0 and stage[1].seen[:, :5].min() == 1
    assert out[:, 5:].abs().sum() == 0 and out[:, :5].min() == 1
    assert torch.equal(model(x), x)  # the hooks are gone


def test_probe_reaches_the_vit_segments_and_skips_blocks():
    model = models.deit_like(32, 8, 'steps').eval()
    stage = path_probes.pick_stage(model)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        plain = model(x)
        with path_probes.masked_input(stage, 0, 4):
            masked = model(x)
        with path_probes.skipped_blocks(list(stage)):
            skipped = model(x)
    assert not torch.allclose(plain, masked)
    assert not torch.allclose(plain, skipped)
    # spec [(16, 4), (24, 2), (32, 2)]: one block of width 32 costs 4 of width 16
    assert [path_probes.blocks_for_compute(stage, i, 1.) for i in range(3)] == [4, 2, 1]
    assert path_probes.mask_counts(stage) == [3, 5, 8, 11, 13]


@pytest.mark.slow
def test_probe_paths_cli_trains_saves_and_reloads(tmp_path):
    ckpt = tmp_path / 'model.pth'
    run = [sys.executable, osp.join(ROOT, 'tools', 'probe_paths.py')]
    out = subprocess.run(run + ['--width', '32', '--blocks', '4', '--epochs', '0.1',
                                '--save', str(ckpt), '--out', str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert 'first n (slow path)' in out and '| F3 |' in out
    result = json.loads((tmp_path / 'probe_paths.json').read_text())['result']
    assert len(result['slow']) == len(result['fast']) == 5
    reloaded = subprocess.run(run + ['--checkpoint', str(ckpt)], capture_output=True,
                              text=True, check=True).stdout
    assert reloaded.split('\n\n', 2)[2] == out.split('\n\n', 2)[2]  # same probes


@pytest.mark.slow
def test_shortcut_ratio_quick(tmp_path):
    """--quick: the paper's three models (shallow sequential, deep sequential,
    deep steps) at a toy size, five panels each, both readings for steps."""
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'shortcut_ratio.py'), '--quick',
         '--out', str(tmp_path)], capture_output=True, text=True, check=True,
        timeout=120).stdout
    assert '| DeiT-like 22 layers | init |' in out
    assert "| Steps-DeiT-like 42 layers | init | step's input |" in out
    result = json.loads((tmp_path / 'shortcut_ratio.json').read_text())
    runs = result['runs']
    assert [(r['layout'], r['blocks']) for r in runs] == \
        [('sequential', 4), ('sequential', 8), ('steps', 8)]
    for run in runs:
        assert len(run['panels']) == 1 + len(shortcut.PAPER_EPOCHS)
        steps = [p['step'] for p in run['panels']]
        assert steps == sorted(steps) and steps[0] == 0
        assert all(len(p['records']) == run['blocks'] for p in run['panels'])
    # the steps model's readings differ where a step begins
    records = runs[2]['panels'][0]['records']
    assert any(r['gamma'] != pytest.approx(r['gamma_step']) for r in records)
    assert (tmp_path / 'shortcut_ratio.png').stat().st_size > 10_000


@pytest.mark.slow
def test_depth_study_quick(tmp_path):
    """--quick end to end: Fig. 1 paired at the same layers and final width
    (in two worker processes), Table 2, the JSON files and both plots."""
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'depth_study.py'), '--quick',
         '--out', str(tmp_path)], capture_output=True, text=True, check=True,
        timeout=180)
    out = proc.stdout
    assert 'Table 2 form' in out and 'Fig. 1 form' in out
    assert 'jobs done]' in proc.stderr and 'eta' in proc.stderr  # progress
    result = json.loads((tmp_path / 'depth_study.json').read_text())
    shallow = result['table2']['runs']
    assert len(shallow) == 2 * 1 * 2 * 2  # layers x filters x kernels x layouts
    for par, seq in zip(shallow[::2], shallow[1::2]):
        assert (par['layout'], seq['layout']) == ('parallel', 'sequential')
        assert (par['layers'], par['kernel']) == (seq['layers'], seq['kernel'])
        assert seq['params'] == par['params']  # same layers, same parameters
        if seq['layers'] == 1:  # one branch: parallel is sequential exactly
            assert seq['val_loss'] == pytest.approx(par['val_loss'], rel=1e-4)
    fig1 = result['fig1']
    cells = fig1['cells']
    seq = [c for c in cells if c['layout'] == 'sequential']
    steps = [c for c in cells if c['layout'] == 'steps']
    assert [c['blocks'] for c in seq] == [c['blocks'] for c in steps] == [4, 8]
    for s, q in zip(steps, seq):  # same layers; steps costs about half
        assert s['layers'] == q['layers'] == 5 * q['blocks'] + 2
        assert .4 < s['macs'] / q['macs'] < .65
    assert all(0 <= c['val_acc'] <= 1 for c in cells)
    assert fig1['fit']['ok'] is False and 'BELOW' in out  # one epoch underfits
    assert len(fig1['gaps']) == 2
    per_seed = json.loads((tmp_path / 'depth_study_seed0.json').read_text())
    assert len(per_seed) == 4 and {r['seed'] for r in per_seed} == {0}
    for run in fig1['runs']:  # one epoch: one entry of its learning curve
        assert len(run['history']) == 1 and run['curve_train'] == 200
        assert 0 <= run['history'][0]['train_acc'] <= 1
    assert [p['flat'] for p in fig1['plateaus']] == [None] * 4  # too short
    for name in ('shallow_losses.png', 'depth_accuracy.png', 'depth_curves.png'):
        assert (tmp_path / name).stat().st_size > 10_000


@pytest.mark.slow
def test_depth_study_one_depth_with_learning_curves(tmp_path):
    """The deepest-pair mode: one depth, a chosen budget, its own folder (the
    full study's files beside it untouched), a learning curve per run, the
    flatness verdict, the t interval of the gap and the curves' plot."""
    full = tmp_path / 'depth_study.json'
    full.write_text('{"kept": true}')
    out = tmp_path / 'deep'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'depth_study.py'), '--quick',
         '--only', 'fig1', '--blocks', '4', '--epochs', '3', '--seeds', '0,1',
         '--out', str(out), '--cache', str(tmp_path / 'cache')],
        capture_output=True, text=True, check=True, timeout=300)
    assert 'expected run time' in proc.stderr
    assert 'Table 2 form' not in proc.stdout and 'BELOW' not in proc.stdout
    assert '| sequential | 4 | 22 |' in proc.stdout and 'flat' in proc.stdout
    assert full.read_text() == '{"kept": true}'
    assert sorted(p.name for p in out.iterdir()) == [
        'depth_accuracy.png', 'depth_curves.png', 'depth_study.json',
        'depth_study_seed0.json', 'depth_study_seed1.json']
    fig1 = json.loads((out / 'depth_study.json').read_text())['fig1']
    assert list(json.loads((out / 'depth_study.json').read_text())) == ['fig1']
    assert fig1['config']['blocks'] == [4] and fig1['config']['recipe']['epochs'] == 3
    assert fig1['fit'] is None  # no shallow model to check the recipe on
    runs = fig1['runs']
    assert sorted((r['layout'], r['seed']) for r in runs) == [
        ('sequential', 0), ('sequential', 1), ('steps', 0), ('steps', 1)]
    for run in runs:
        history = run['history']
        assert [h['epoch'] for h in history] == [1, 2, 3]  # one entry per epoch
        assert all(0 <= h['train_acc'] <= 1 and 0 <= h['val_acc'] <= 1
                   for h in history)
        assert history[-1]['val_acc'] == run['val_acc']
    assert [(p['layout'], p['epochs']) for p in fig1['plateaus']] == \
        [('sequential', 3), ('steps', 3)]
    for p in fig1['plateaus']:
        assert p['tail_spread'] >= 0 and isinstance(p['flat'], bool)
        assert 0 < p['tail_lr'] < 1 and len(p['tail_spread_per_seed']) == 2
    gap, = fig1['gaps']
    lo, hi = gap['val_acc_ci']  # two seeds: a t interval around the mean gap
    assert lo <= gap['val_acc'] <= hi and len(gap['val_acc_diffs']) == 2
    assert (out / 'depth_curves.png').stat().st_size > 10_000
    # again with the same cache: every job kept, the same numbers
    again = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'depth_study.py'), '--quick',
         '--only', 'fig1', '--blocks', '4', '--epochs', '3', '--seeds', '0,1',
         '--cache', str(tmp_path / 'cache'), '--quiet'],
        capture_output=True, text=True, check=True, timeout=120)
    assert again.stdout == proc.stdout
