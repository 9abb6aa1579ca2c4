"""The demo's comparisons (``steps_lab.demo.chain.PAIRS``): each pair's generated
configs are twins trained like for like, with the family's demo recipe on both
sides; the compare tool refuses options that need --compare; a parallel compare
makes mim's cache folder before its two mim processes race to create it."""
import os
import os.path as osp
import re
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


HEAD_PAIRS = [(name, head) for name, (steps, _) in PAIRS.items() for head in steps.heads]


@pytest.mark.slow  # per head: both twins' generated configs built into models
@pytest.mark.parametrize('name, head', HEAD_PAIRS, ids=[f'{n}-{h}' for n, h in HEAD_PAIRS])
def test_each_head_runs_like_for_like_on_the_demos_data(name, head, demo_data, tmp_path):
    """The twins' generated configs of a --head stage differ in the backbone
    only, train with the demo's schedule, lr and seed and the head recipe's own
    optimizer, and build into models with the built-in data's classes."""
    from mmengine.registry import MODELS, init_default_scope
    from steps_lab.demo.chain import HEADS, stage_dir_name
    from steps_lab.demo.data import SEG_CLASSES
    stage = HEADS[head]
    recipe = ChainRecipe()
    configs = []
    for model in PAIRS[name]:
        job_dir = str(tmp_path / model.name / stage_dir_name(stage, recipe, head))
        path = stage_config(model, stage, demo_data, job_dir, recipe, seed=3,
                            backbone_checkpoint=osp.join(job_dir, 'epoch_12.pth'), head=head)
        assert osp.basename(path) == osp.basename(model.heads[head])
        configs.append(Config.fromfile(path, import_custom_modules=False))
    assert [twins.layout(c) for c in configs] == ['steps', 'sequential']
    assert twins.differences(*configs) == [], (name, head)
    stock = Config.fromfile(PAIRS[name][0].config(stage, head), import_custom_modules=False)
    for model, cfg in zip(PAIRS[name], configs):
        optimizer = cfg.optim_wrapper.optimizer
        # the demo's lr; the head recipe's optimizer (AdamW), not the family's swap
        assert optimizer.lr == 4e-4 and optimizer.type == stock.optim_wrapper.optimizer.type
        assert optimizer.get('weight_decay') == stock.optim_wrapper.optimizer.get('weight_decay')
        assert cfg.randomness.seed == 3 and cfg.train_cfg.max_iters == recipe.iters(stage)
        assert cfg.model.backbone.init_cfg.checkpoint.endswith('epoch_12.pth')
        init_default_scope(cfg.default_scope)
        built = MODELS.build(cfg.model)
        if head == 'cascade':
            assert [h.num_classes for h in built.roi_head.bbox_head] == [len(CLASSES)] * 3
            assert cfg.model.test_cfg.rpn.max_per_img == 300
        elif head == 'dino':
            assert built.bbox_head.num_classes == len(CLASSES) and built.num_queries == 100
        else:  # Mask2Former, ADE20K recipe: background and the three shapes
            assert cfg.default_scope == 'mmseg'
            assert built.decode_head.num_classes == len(SEG_CLASSES)
            assert len(cfg.model.decode_head.loss_cls.class_weight) == len(SEG_CLASSES) + 1


@pytest.mark.slow  # mmengine's Config.fromfile is not thread-safe (~30 s)
def test_the_twins_threads_generate_their_configs_at_once(demo_data, tmp_path):
    """``run_compare``'s two threads plan and write their configs at the same
    time; without ``chain.CONFIG_LOCK`` mmengine's base-config lookup raced
    (pkg_resources: "'DistInfoDistribution' object is not iterable") in about
    a third of the threads and that twin's chain died before it started."""
    import threading
    from steps_lab.demo.chain import plan_chain
    errors = []

    def plan(model, folder):
        try:
            plan_chain(model, demo_data, folder, ChainRecipe(), 0, ('det', ), head='cascade')
        except BaseException as error:  # noqa: B902
            errors.append(error)

    for attempt in range(3):
        threads = [threading.Thread(target=plan, args=(m, str(tmp_path / f'{attempt}{i}')))
                   for i, m in enumerate(PAIRS['swin-t'])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_the_twins_threads_print_whole_lines():
    """Both twins' threads print their progress through ``chain.say`` into one
    log; without its lock print's separate writes of a line and its newline
    interleaved (about 1,600 broken lines of 40,000 here)."""
    script = (
        'import sys, threading\n'
        'sys.setswitchinterval(1e-6)\n'  # switch threads as often as possible
        'from steps_lab.demo.chain import say\n'
        'def run(name):\n'
        '    for i in range(20000):\n'
        '        say(f"[{name}] line {i}")\n'
        'threads = [threading.Thread(target=run, args=(n, )) for n in "AB"]\n'
        '[t.start() for t in threads]\n'
        '[t.join() for t in threads]\n')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 40000
    broken = [line for line in lines if not re.fullmatch(r'\[[AB]\] line \d+', line)]
    assert broken == []


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


def test_demo_reuse_of_a_run_never_made_says_what_to_run(tmp_path):
    done = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'demo.py'), '--compare',
                           '--model', 'resnet-50', '--reuse', '--seeds', '0', '--work-dir',
                           str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith('no run of Steps-ResNet-50 (seed 0) in '), done.stderr
    assert 'run --compare --model resnet-50 with these --seeds' in done.stderr
    assert 'Traceback' not in done.stderr


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
    # a run that reused earlier seeds' stages: its time leaves them out, and says so
    (tmp_path / 'swin-t.json').write_text(
        '{"seeds": [0, 1], "command": "python tools/demo.py --compare --seeds 0 1", '
        '"wall_seconds": 1900, "reused": ["seed0/steps/pretrain"]}')
    assert recorded_run(str(tmp_path), 'swin-t', [0, 1]) == dict(
        command='python tools/demo.py --compare --seeds 0 1', wall_seconds=1900,
        reused=['seed0/steps/pretrain'])


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


# ---- heads and job dirs ---------------------------------------------------------
def test_each_head_is_offered_by_the_pairs_whose_twins_both_have_it():
    from steps_lab.demo.chain import HEADS, pairs_with
    assert {h: pairs_with(h) for h in HEADS} == {
        'cascade': ['convnext-t', 'swin-t'], 'dino': ['resnet-50', 'swin-t'],
        'mask2former': ['resnet-50', 'swin-t']}
    for name, (steps, twin) in PAIRS.items():
        assert set(steps.heads) == set(twin.heads), name
        for head in steps.heads:
            for model in (steps, twin):
                assert osp.exists(model.config(HEADS[head], head)), (name, head)
    assert PAIRS['deit-s'][0].heads == {}


def test_a_head_a_pair_lacks_is_refused_naming_the_pairs_that_have_it():
    from steps_lab.compare.side_by_side import check_head, read_compare, run_compare
    with pytest.raises(ValueError, match='--model resnet-50 has no cascade head; the '
                                         'pairs with one: convnext-t, swin-t'):
        check_head('resnet-50', 'cascade')
    with pytest.raises(ValueError, match='--model deit-s has no mask2former head; the '
                                         'pairs with one: resnet-50, swin-t'):
        run_compare('deit-s', 'data', 'work', ChainRecipe(), head='mask2former')
    with pytest.raises(ValueError, match="no head 'yolo'"):
        read_compare('swin-t', 'work', ChainRecipe(), head='yolo')
    check_head('swin-t', 'dino')  # no error


@pytest.mark.parametrize('argv, message', [
    (['--compare', '--model', 'convnext-t', '--head', 'dino'],
     '--model convnext-t has no dino head; the pairs with one: resnet-50, swin-t'),
    pytest.param(['--head', 'cascade'], '--head needs --compare', marks=pytest.mark.slow),
    pytest.param(['--compare', '--head', 'cascade', '--only', 'det'],
                 '--head cascade runs its det stage alone: leave out --only',
                 marks=pytest.mark.slow)])
def test_demo_refuses_a_head_it_cannot_run(argv, message):
    done = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'demo.py'), *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]


def test_job_dirs_are_named_after_what_differs_from_the_default_chain():
    from steps_lab.demo.chain import stage_dir_name as name
    default, long = ChainRecipe(), ChainRecipe(det_iters=540, seg_iters=180)
    # the default heads at the default schedule: the names earlier work dirs have
    assert [name(s, default) for s in STAGES] == ['pretrain', 'det', 'seg']
    assert name('det', default, start='scratch') == 'det_scratch'
    assert [name(s, long) for s in STAGES] == ['pretrain', 'det_540it', 'seg_180it']
    assert name('det', default, 'cascade') == 'det_cascade'
    assert name('seg', long, 'mask2former') == 'seg_mask2former_180it'
    assert name('det', ChainRecipe(finetune_lr=2e-4), 'dino') == 'det_dino_lr0.0002'
    short = ChainRecipe(pretrain_epochs=2, det_iters=4)
    assert [name('pretrain', short), name('det', short, 'cascade'), name('seg', short),
            name('det', short, start='scratch')] == [
        'pretrain_2ep', 'det_cascade_4it_pre2ep', 'seg_pre2ep', 'det_4it_scratch']


def test_a_summary_of_a_head_is_named_after_it_and_read_from_its_job_dirs(tmp_path):
    from steps_lab.compare.side_by_side import read_compare, summary_stem
    assert summary_stem('convnext-t') == 'convnext-t'
    assert summary_stem('convnext-t', 'cascade') == 'convnext-t_cascade'
    recipe = ChainRecipe(det_iters=540)
    for side in ('steps', 'baseline'):
        for stage in ('pretrain', 'det_cascade_540it'):
            (tmp_path / 'seed0' / side / stage).mkdir(parents=True)
    result = read_compare('swin-t', str(tmp_path), recipe, [0], head='cascade')
    assert result.job_dirs['Swin-T'][0] == [
        str(tmp_path / 'seed0' / 'baseline' / d) for d in ('pretrain', 'det_cascade_540it')]
    with pytest.raises(FileNotFoundError, match=r'seed0/steps/det_dino_540it: run '
                                                r'--compare --model swin-t --head dino'):
        read_compare('swin-t', str(tmp_path), recipe, [0], head='dino')


def test_a_compare_says_what_it_reuses_and_its_summary_names_it(tmp_path, monkeypatch):
    """Before training: the plan and the estimate; all reused: says so; the
    summary lists the reused job dirs (its wall time leaves their training out)
    and says nothing of reuse where nothing was reused (the default's JSON as
    it was)."""
    from steps_lab.compare import side_by_side
    from steps_lab.demo.chain import ChainStage
    work = str(tmp_path)

    def plans(actions):
        return lambda name, data, work_dir, recipe, seeds, stages, head: {
            0: [[ChainStage(s, s, None, osp.join(work_dir, 'seed0', side, s), a)
                 for s, a in zip(('pretrain', 'det'), actions)]
                for side in ('steps', 'baseline')]}

    monkeypatch.setattr(side_by_side, 'run_chain', lambda *args, **kwargs: {})
    lines = []
    monkeypatch.setattr(side_by_side, 'plan_compare', plans(['reuse', 'train']))
    result = side_by_side.run_compare('convnext-t', 'data', work, ChainRecipe(),
                                      stages=('det', ), echo=lines.append)
    assert lines[0] == ('[demo] 2 stages to run (0 of them tests of a finished training), '
                        '2 to reuse; estimated wall time: about 14 min')
    data = side_by_side.summary(result)
    assert data['reused'] == ['seed0/steps/pretrain', 'seed0/baseline/pretrain']
    assert 'head' not in data
    monkeypatch.setattr(side_by_side, 'plan_compare', plans(['reuse', 'reuse']))
    lines.clear()
    side_by_side.run_compare('convnext-t', 'data', work, ChainRecipe(), stages=('det', ),
                             echo=lines.append)
    assert lines == [f'[demo] all 4 stages finished in {work}: reusing them']
    monkeypatch.setattr(side_by_side, 'plan_compare', plans(['train', 'train']))
    result = side_by_side.run_compare('convnext-t', 'data', work, ChainRecipe(),
                                      stages=('det', ), echo=lambda line: None)
    assert 'reused' not in side_by_side.summary(result)
