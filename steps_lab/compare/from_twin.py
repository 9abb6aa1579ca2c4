"""Weight selection at the demo's scale: does a Steps model started from its
twin's weights (``steps_mm.models.pretrained.selection``) beat one started from
random init, and what does it give in Mask R-CNN and UperNet?

It builds on a finished ``--compare`` of the same pair, seeds and recipe
(``compare.run_compare``): there the twin was pretrained (its checkpoint is the
source of the selection), and the Steps model was pretrained from random init
(its own pretraining, a reference) and both were fine-tuned (the references of
the dense tasks). Per seed it adds these starts of the Steps model (``ARMS``):

- ``random``: the classifier at its own init, tested (top-1 at 0 epochs);
- ``selected``: the backbone selected from the twin's pretraining checkpoint, the
  head and neck copied from it (the same shapes: a Steps stage ends at the twin's
  width), tested (top-1 at 0 epochs), then fine-tuned as Mask R-CNN and UperNet
  with no Steps pretraining at all: a user's path from a twin checkpoint;
- ``selected+pretrained``: ``selected`` pretrained with the demo's recipe (the
  same epochs as the Steps model's own pretraining), tested, fine-tuned.

The deltas against the Steps model's own pretraining and against the twin are
paired by seed and bootstrapped over the same validation images as the
comparison's (``steps_lab.results.intervals``).
"""
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from ..report import mean_std, new_figure, save_figure, write_json
from ..demo.chain import (PAIRS, STAGES, ChainRecipe, finished_job_dir, say, stage_config,
                          test_checkpoint, train_and_test)
from .side_by_side import COLUMNS, chain_dir

#: the Steps model's starts this study adds, in order
ARMS = ('random', 'selected', 'selected+pretrained')
#: the comparison's runs it reads: the Steps model's own pretraining, the twin
REFERENCES = ('own pretraining', 'twin')
#: the metric each stage's test gives
STAGE_COLUMNS = {'pretrain': ('top-1', ), 'det': ('AP^box', 'AP^mask'), 'seg': ('mIoU', )}
#: the deltas reported: (arm, reference)
DELTAS = (('selected', 'own pretraining'), ('selected+pretrained', 'own pretraining'),
          ('selected', 'twin'), ('selected+pretrained', 'twin'))


@dataclass
class Study:
    """What ``run_selection`` ran: per seed, each start's job dirs by stage."""
    name: str
    seeds: List[int]
    recipe: ChainRecipe
    job_dirs: Dict[int, Dict[str, Dict[str, str]]] = field(default_factory=dict)
    seconds: float = 0.0


def classifier_checkpoint(pretrain_cfg: str, out_file: str,
                          twin_checkpoint: Optional[str] = None) -> str:
    """Write the classifier of the generated pretraining config ``pretrain_cfg``
    as an mmpretrain checkpoint: at its own init, or with the backbone selected
    from ``twin_checkpoint`` (a classifier checkpoint of the twin) and every
    other tensor (head, neck) copied from it. Returns the selection's report
    line (or the init's)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from steps_mm.models.pretrained import read_checkpoint
    from steps_mm.models.pretrained.selection import select_from_twin
    cfg = Config.fromfile(pretrain_cfg)  # its custom_imports register steps_mm
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    model.init_weights()
    line = f'{osp.basename(out_file)}: the classifier at its own init'
    if twin_checkpoint:
        report = select_from_twin(model.backbone, twin_checkpoint, prefix='backbone.')
        source = read_checkpoint(twin_checkpoint)
        source = source.get('state_dict', source)
        own = model.state_dict()
        rest = {k: v for k, v in source.items() if not k.startswith('backbone.')}
        for key, value in rest.items():
            if key not in own or own[key].shape != value.shape:
                fits = tuple(own[key].shape) if key in own else 'nothing of that name'
                raise ValueError(
                    f'{twin_checkpoint}: {key} {tuple(value.shape)} does not fit the '
                    f'Steps classifier {fits}; give a checkpoint of the twin '
                    f'pretrained on the same classes')
        missing = [k for k in own if not k.startswith('backbone.') and k not in rest]
        if missing:
            raise ValueError(f'{twin_checkpoint} lacks {missing} of the classifier')
        model.load_state_dict(rest, strict=False)
        line = report.line() + f'; {len(rest)} head/neck tensors copied'
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(steps_mm=dict(selected_from=twin_checkpoint))), out_file)
    return line


def twin_pretraining(compare_dir: str, name: str, seed: int, recipe: ChainRecipe) -> str:
    """The twin's pretraining checkpoint in a finished comparison."""
    twin = PAIRS[name][1]
    path = osp.join(finished_job_dir(chain_dir(compare_dir, name, twin, seed), 'pretrain',
                                     recipe), 'train', f'epoch_{recipe.pretrain_epochs}.pth')
    if not osp.exists(path):
        raise FileNotFoundError(
            f'no {twin.name} pretraining (seed {seed}) at {path}: run python '
            f'tools/demo.py --compare --model {name} --seeds {seed} --work-dir '
            f'{compare_dir} (with this schedule) first')
    return path


def run_selection(name: str, compare_dir: str, work_dir: str, recipe: ChainRecipe,
                  seeds: Sequence[int] = (0, ), stages=('det', 'seg'),
                  echo: Callable[[str], None] = say,
                  threads: Optional[int] = None) -> Study:
    """Every start of ``ARMS`` for each seed (module doc), on the comparison's
    data in ``compare_dir``."""
    if name not in PAIRS:
        raise ValueError(f'no comparison {name!r}; choose one of {sorted(PAIRS)}')
    steps = PAIRS[name][0]
    data_dir = osp.join(compare_dir, 'data')
    sources = {seed: twin_pretraining(compare_dir, name, seed, recipe) for seed in seeds}
    reference_dirs(compare_dir, name, seeds, stages, recipe)  # all there before training
    study, start = Study(name, list(seeds), recipe), time.time()
    for seed in seeds:
        dirs = study.job_dirs.setdefault(seed, {})
        checkpoints = {}
        for arm in ARMS:
            job_dir = osp.join(work_dir, f'seed{seed}', arm, 'pretrain')
            dirs.setdefault(arm, {})['pretrain'] = job_dir
            if arm == 'selected+pretrained':
                cfg = stage_config(steps, 'pretrain', data_dir, job_dir, recipe, seed,
                                   load_from=checkpoints['selected'])
                echo(f'[selection] seed {seed}: {arm}: {recipe.pretrain_epochs} epochs')
                run = train_and_test('mmpretrain', cfg, job_dir,
                                     f'epoch_{recipe.pretrain_epochs}.pth', echo, threads)
            else:
                cfg = stage_config(steps, 'pretrain', data_dir, job_dir, recipe, seed)
                checkpoint = osp.join(job_dir, 'epoch_0.pth')
                echo('[selection] ' + classifier_checkpoint(
                    cfg, checkpoint, sources[seed] if arm == 'selected' else None))
                run = test_checkpoint('mmpretrain', cfg, job_dir, checkpoint, echo, threads)
            checkpoints[arm] = run.checkpoint
            echo(f'[selection] seed {seed}: {arm}: top-1 '
                 f'{run.metrics["accuracy/top1"]:.1f} at '
                 f'{recipe.pretrain_epochs if arm.endswith("pretrained") else 0} epochs')
        for arm in ARMS[1:]:
            for stage in stages:
                job_dir = osp.join(work_dir, f'seed{seed}', arm, stage)
                cfg = stage_config(steps, stage, data_dir, job_dir, recipe, seed,
                                   backbone_checkpoint=checkpoints[arm])
                echo(f'[selection] seed {seed}: {stage} from {arm}, '
                     f'{recipe.iters(stage)} iterations')
                train_and_test(STAGES[stage][0], cfg, job_dir,
                               f'iter_{recipe.iters(stage)}.pth', echo, threads)
                dirs[arm][stage] = job_dir
    study.seconds = time.time() - start
    return study


def reference_dirs(compare_dir: str, name: str, seeds: Sequence[int], stages,
                   recipe: ChainRecipe) -> Dict[int, Dict[str, Dict[str, str]]]:
    """seed -> reference -> stage -> the comparison's job dir, each tested and
    trained on ``recipe``'s schedule (its last checkpoint is there)."""
    found = {}
    for seed in seeds:
        for reference, model in zip(REFERENCES, PAIRS[name]):
            for stage in ('pretrain', ) + tuple(stages):
                job_dir = finished_job_dir(chain_dir(compare_dir, name, model, seed), stage,
                                           recipe)
                last = (f'epoch_{recipe.pretrain_epochs}.pth' if stage == 'pretrain'
                        else f'iter_{recipe.iters(stage)}.pth')
                if not (osp.isdir(osp.join(job_dir, 'test'))
                        and osp.exists(osp.join(job_dir, 'train', last))):
                    raise FileNotFoundError(
                        f'no {stage} run of {model.name} (seed {seed}) trained to {last} '
                        f'and tested in {job_dir}: run python tools/demo.py --compare '
                        f'--model {name} --seeds {" ".join(map(str, seeds))} --work-dir '
                        f'{compare_dir} with this schedule first')
                found.setdefault(seed, {}).setdefault(reference, {})[stage] = job_dir
    return found


def read_study(name: str, work_dir: str, recipe: ChainRecipe, seeds: Sequence[int],
               stages=('det', 'seg')) -> Study:
    """The finished runs of an earlier ``run_selection`` in ``work_dir``."""
    study = Study(name, list(seeds), recipe)
    for seed in seeds:
        for arm in ARMS:
            for stage in ('pretrain', ) + (tuple(stages) if arm != 'random' else ()):
                job_dir = osp.join(work_dir, f'seed{seed}', arm, stage)
                if not osp.isdir(osp.join(job_dir, 'test')):
                    raise FileNotFoundError(f'no tested run in {job_dir}: run the study '
                                            f'with these --seeds and --work-dir first')
                study.job_dirs.setdefault(seed, {}).setdefault(arm, {})[stage] = job_dir
    return study


def _scores(job_dir: str) -> Dict:
    from ..results import read_run
    from ..results.intervals import read_image_scores
    return read_image_scores(read_run(job_dir).test())


def summary(study: Study, compare_dir: str, command: str = '',
            resamples: int = 1000) -> Dict:
    """Per seed and start, every metric (with its validation images); mean ± std;
    the deltas of ``DELTAS`` with their intervals and verdicts."""
    from ..results.intervals import delta_interval
    stages = [s for s in STAGE_COLUMNS if s in next(iter(study.job_dirs.values()))['selected']]
    references = reference_dirs(compare_dir, study.name, study.seeds,
                                [s for s in stages if s != 'pretrain'], study.recipe)
    scores = {}  # seed -> start -> column -> ImageScores
    for seed in study.seeds:
        for start, by_stage in {**study.job_dirs[seed], **references[seed]}.items():
            for stage, job_dir in by_stage.items():
                found = _scores(job_dir)
                for column in STAGE_COLUMNS[stage]:
                    scores.setdefault(seed, {}).setdefault(start, {})[column] = found[column]
    per_seed = [dict(seed=seed, **{
        start: {c: dict(value=s.value(), images=s.num_images) for c, s in cols.items()}
        for start, cols in scores[seed].items()}) for seed in study.seeds]
    means = {}
    for start in ARMS + REFERENCES:
        for column in COLUMNS:
            values = [row[start][column]['value'] for row in per_seed
                      if column in row.get(start, {})]
            if values:
                mean, std = mean_std(values)
                means.setdefault(start, {})[column] = dict(mean=mean, std=std,
                                                           seeds=len(values))
    deltas = []
    for arm, reference in DELTAS:
        for column in COLUMNS:
            pairs = [(scores[s][arm][column], scores[s][reference][column])
                     for s in study.seeds if column in scores[s][arm]]
            if pairs:
                deltas.append(dict(start=arm, against=reference,
                                   **delta_interval(pairs, resamples).to_dict()))
    top1_at_0 = {arm: means[arm]['top-1'] for arm in ('random', 'selected')}
    return dict(comparison=study.name, steps=PAIRS[study.name][0].name,
                twin=PAIRS[study.name][1].name, command=command, seeds=study.seeds,
                wall_seconds=round(study.seconds), recipe=asdict(study.recipe),
                starts=list(ARMS + REFERENCES), top1_at_0_epochs=top1_at_0,
                per_seed=per_seed, mean_std=means, deltas=deltas)


def delta_table(data: Dict) -> str:
    """Markdown: per metric and start, mean ± std; then every delta, its
    interval and verdict."""
    from ..report import markdown_table
    starts = [s for s in data['starts'] if s in data['mean_std']]
    rows = [[c] + [(f"{data['mean_std'][s][c]['mean']:.1f} ± "
                    f"{data['mean_std'][s][c]['std']:.1f}"
                    if c in data['mean_std'][s] else '') for s in starts]
            for c in COLUMNS]
    steps = data['steps']
    head = ['metric'] + [f'{steps} {s}' if s in ARMS else
                         (f'{steps} own pretraining' if s == 'own pretraining'
                          else data['twin']) for s in starts]
    means = markdown_table(head, rows)
    rows = [[d['column'], d['start'], d['against'], f"{d['delta']:+.1f}",
             f"[{d['low']:+.1f}, {d['high']:+.1f}]", d['verdict'],
             f"{d['seeds']} × {d['images']}"] for d in data['deltas']]
    return means + '\n\n' + markdown_table(
        ['metric', 'start', 'against', 'delta', '95% interval', 'verdict',
         'seeds × val images'], rows)


def write_selection_summary(data: Dict, out_dir: str, stem: str) -> Dict[str, str]:
    """``<stem>.json`` and ``<stem>.png``: per metric, every start's per-seed
    figures (top row) and the deltas with their intervals (bottom row)."""
    paths = dict(json=write_json(out_dir, f'{stem}.json', data))
    columns = [c for c in COLUMNS if any(c in data['mean_std'][s] for s in data['mean_std'])]
    starts = [s for s in data['starts'] if s in data['mean_std']]
    fig, axes = new_figure(ncols=len(columns), nrows=2, width=3.6, height=3.4)
    for ax, column in zip(axes, columns):
        for x, start in enumerate(starts):
            values = [row[start][column]['value'] for row in data['per_seed']
                      if column in row.get(start, {})]
            if values:
                ax.plot([x] * len(values), values, 'o', color=f'C{x}', alpha=.7)
                ax.plot([x - .25, x + .25], [sum(values) / len(values)] * 2, 'k-')
        ax.set(title=column, xticks=range(len(starts)))
        ax.set_xticklabels(starts, rotation=30, ha='right', fontsize=7)
        ax.grid(alpha=.3)
    for ax, column in zip(axes[len(columns):], columns):
        found = [d for d in data['deltas'] if d['column'] == column]
        for y, d in enumerate(found):
            ax.errorbar(d['delta'], y, fmt='o', capsize=3, xerr=[[d['delta'] - d['low']],
                                                                 [d['high'] - d['delta']]])
        ax.axvline(0, color='k', lw=.8)
        ax.set(yticks=range(len(found)), title=f'{column}: delta, 95% interval')
        ax.set_yticklabels([f"{d['start']} − {d['against']}" for d in found], fontsize=7)
        ax.grid(alpha=.3)
    paths['png'] = save_figure(fig, out_dir, f'{stem}.png')
    return paths
