"""The demo's side-by-side: a Steps model and its twin through the same chain,
per seed, and what the deltas can tell.

``run_compare`` trains both twins of ``chain.PAIRS[name]`` with the same recipe
and seeds (side by side, one CPU thread each, when ``parallel``), through the
default heads (Mask R-CNN, UperNet) or one other ``head`` (``chain.HEADS``); it
reuses the stages already finished in the work dir on the same configs
(``chain.stage_action``), says beforehand how long the rest will take
(``costs.estimate``) and how far it is at every stage; then it reads the
finished runs back with ``steps_lab.results``: the paper's tables (mean ± std over
seeds), the interval of each Steps-minus-twin delta and its verdict
(``steps_lab.results.intervals``). ``write_summary`` keeps the per-seed figures
(with the number of validation images behind each) as JSON and plots them.
"""
import json
import os
import os.path as osp
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..report import mean_std, new_figure, save_figure, write_json
from ..demo.chain import (HEADS, PAIRS, ChainRecipe, finished_job_dir, pairs_with,
                          plan_chain, run_chain, say)

#: the metrics compared, in the tables' columns
COLUMNS = ('top-1', 'AP^box', 'AP^mask', 'mIoU')


@dataclass
class Comparison:
    """What ``run_compare`` measured: the job dirs of every run (for
    ``steps_lab.results``), the result tables, and the stages' wall times."""
    name: str
    seeds: List[int]
    recipe: ChainRecipe
    head: Optional[str] = None  # the default heads when None
    job_dirs: Dict[str, Dict[int, List[str]]] = field(default_factory=dict)  # model -> seed -> dirs
    tables: List = field(default_factory=list)
    seconds: float = 0.0
    #: the job dirs ``run_compare`` found finished and reused (relative to the work
    #: dir); ``seconds`` leaves their training out
    reused: List[str] = field(default_factory=list)

    @property
    def models(self):
        return PAIRS[self.name]


def check_head(name: str, head: Optional[str]):
    """``ValueError`` for a pair not in ``PAIRS`` or a head its twins lack (naming
    the pairs that have it)."""
    if name not in PAIRS:
        raise ValueError(f'no comparison {name!r}; choose one of {sorted(PAIRS)}')
    if head is None:
        return
    if head not in HEADS:
        raise ValueError(f'no head {head!r}; choose one of {sorted(HEADS)}')
    if name not in pairs_with(head):
        raise ValueError(f'--model {name} has no {head} head; the pairs with one: '
                         f'{", ".join(pairs_with(head))}')


def compare_stages(stages: Sequence[str], head: Optional[str]) -> Tuple[str, ...]:
    """The fine-tuning stages a comparison runs: ``head``'s stage alone, when
    given, else ``stages``."""
    return (HEADS[head], ) if head else tuple(stages)


def summary_stem(name: str, head: Optional[str] = None) -> str:
    """The stem of the summary JSON/PNG and the losses plot: ``convnext-t``,
    ``convnext-t_cascade``."""
    return name if head is None else f'{name}_{head}'


def plan_compare(name: str, data_dir: str, work_dir: str, recipe: ChainRecipe,
                 seeds: Sequence[int] = (0, ), stages=('det', 'seg'),
                 head: Optional[str] = None) -> Dict[int, List[List]]:
    """seed -> [the Steps model's planned stages, its twin's] (``plan_chain``);
    raises ``StageConflict`` before anything trains."""
    return {seed: [plan_chain(model, data_dir, chain_dir(work_dir, name, model, seed),
                              recipe, seed, compare_stages(stages, head), head=head)
                   for model in PAIRS[name]] for seed in seeds}


def run_compare(name: str, data_dir: str, work_dir: str, recipe: ChainRecipe,
                seeds: Sequence[int] = (0, ), stages=('det', 'seg'), parallel: bool = True,
                echo: Callable[[str], None] = say, head: Optional[str] = None) -> Comparison:
    """Both twins of ``PAIRS[name]`` through ``run_chain`` for every seed; with
    ``parallel`` the two run at the same time, one torch thread each. With
    ``head``, its stage alone follows the pretraining. Before training: the plan
    (what is reused) and the estimated wall time; at every stage: how far."""
    from .costs import Progress, estimate
    check_head(name, head)
    stages = compare_stages(stages, head)
    start = time.time()
    result = Comparison(name, list(seeds), recipe, head)
    plans = plan_compare(name, data_dir, work_dir, recipe, seeds, stages, head)
    items = [i for sides in plans.values() for side in sides for i in side]
    work = [i for i in items if i.action != 'reuse']
    result.reused = [osp.relpath(i.job_dir, work_dir) for i in items if i.action == 'reuse']
    if work:
        echo(f'[demo] {len(work)} stages to run ({sum(i.action == "test" for i in work)} '
             f'of them tests of a finished training), {len(result.reused)} to reuse; '
             f'estimated wall time: {estimate(name, plans, recipe, parallel)}')
    else:
        echo(f'[demo] all {len(items)} stages finished in {work_dir}: reusing them')
    progress = Progress(name, plans, recipe, result.models, parallel, echo)
    failures: List[BaseException] = []
    if parallel:  # both sides' mim imports would race to create mim's cache folder
        prepare_parallel_mim()

    def chain(side, model, seed):
        try:
            runs = run_chain(model, data_dir, chain_dir(work_dir, name, model, seed),
                             recipe, seed=seed, stages=stages,
                             echo=lambda line: echo(f'[{model.name}] {line}'),
                             threads=1 if parallel else None, head=head,
                             progress=progress.for_side(seed, side), plan=plans[seed][side])
            result.job_dirs.setdefault(model.name, {})[seed] = [
                r.job_dir for r in runs.values()]
        except BaseException as error:  # reported once both sides have stopped
            failures.append(error)

    for seed in seeds:
        if parallel:
            threads = [threading.Thread(target=chain, args=(side, m, seed))
                       for side, m in enumerate(result.models)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for side, model in enumerate(result.models):
                chain(side, model, seed)
        if failures:
            raise failures[0]
    result.seconds = time.time() - start
    return result


def prepare_parallel_mim() -> str:
    """Make mim's cache folder (``~/.cache/mim``, under this process's HOME, which
    the ``mim`` processes inherit) before two of them start together. mim's import
    creates it unguarded (``if not osp.exists(...): os.makedirs(...)``): on a fresh
    machine both twins' first ``mim train`` see it missing, and the slower one dies
    with ``FileExistsError`` at its first stage. Returns the folder."""
    cache = osp.join(osp.expanduser('~'), '.cache', 'mim')
    os.makedirs(cache, exist_ok=True)
    return cache


def side_of(model, name: str) -> str:
    return 'steps' if model is PAIRS[name][0] else 'baseline'


def chain_dir(work_dir: str, name: str, model, seed: int) -> str:
    """Where ``run_compare`` runs ``model``'s chain for ``seed``."""
    return osp.join(work_dir, f'seed{seed}', side_of(model, name))


def read_compare(name: str, work_dir: str, recipe: ChainRecipe,
                 seeds: Sequence[int] = (0, ), stages=('det', 'seg'),
                 head: Optional[str] = None) -> Comparison:
    """The finished runs of an earlier ``run_compare`` in ``work_dir`` (the
    same recipe and ``head``: its job dirs, ``finished_job_dir``), to summarise
    them again without training (``build``, ``summary``)."""
    check_head(name, head)
    result = Comparison(name, list(seeds), recipe, head)
    for model in result.models:
        for seed in seeds:
            dirs = [finished_job_dir(chain_dir(work_dir, name, model, seed), stage, recipe,
                                     head if head and HEADS[head] == stage else None)
                    for stage in ('pretrain', ) + compare_stages(stages, head)]
            for job_dir in dirs:
                if not osp.isdir(job_dir):
                    raise FileNotFoundError(
                        f'no run of {model.name} (seed {seed}) in {job_dir}: run '
                        f'--compare --model {name}'
                        + (f' --head {head}' if head else '')
                        + ' with these --seeds, schedule and --work-dir first')
            result.job_dirs.setdefault(model.name, {})[seed] = dirs
    return result


def build(result: Comparison, resamples: int = 1000) -> Comparison:
    """The result tables of the finished runs, with the deltas' intervals."""
    from .. import results
    from ..results import intervals
    dirs = [d for model in result.models
            for seed_dirs in result.job_dirs.get(model.name, {}).values() for d in seed_dirs]
    counter = results.FlopCounter(result.recipe.flops_shapes())
    result.tables = intervals.attach(
        results.build_tables(results.read_runs(dirs), counter), resamples)
    return result


def per_seed(result: Comparison) -> List[Dict]:
    """``[{seed, <model>: {column: {value, images}}}]`` from the tables."""
    from ..results.intervals import read_image_scores
    from ..results.tables import seed_of
    rows: Dict[int, Dict] = {}
    for table in result.tables:
        for pair in table.pairs:
            for side in (pair.steps, pair.baseline):
                seed = seed_of(side)
                figures = rows.setdefault(seed, {'seed': seed}).setdefault(side.name, {})
                scores = read_image_scores(side.run.test())
                for column in COLUMNS:
                    if column in side.figures:
                        images = scores[column].num_images if column in scores else None
                        figures[column] = dict(value=side.figures[column].value,
                                               images=images)
    return [rows[s] for s in sorted(rows)]


def summary(result: Comparison, command: str = '') -> Dict:
    """Everything needed to quote the comparison: per-seed figures, mean ± std per
    model, the intervals and verdicts, the recipe, the wall time."""
    seeds = per_seed(result)
    means = {}
    for model in result.models:
        for column in COLUMNS:
            values = [row[model.name][column]['value'] for row in seeds
                      if column in row.get(model.name, {})]
            if values:
                mean, std = mean_std(values)
                means.setdefault(model.name, {})[column] = dict(mean=mean, std=std,
                                                                seeds=len(values))
    found = [i.to_dict() for table in result.tables for group in table.intervals
             for i in group]
    head = {} if result.head is None else dict(head=result.head)
    # wall_seconds leaves out the stages reused from earlier runs: say which
    reused = dict(reused=result.reused) if result.reused else {}
    return dict(comparison=result.name, **head, steps=result.models[0].name,
                twin=result.models[1].name, command=command, seeds=result.seeds,
                wall_seconds=round(result.seconds), **reused, recipe=asdict(result.recipe),
                per_seed=seeds, mean_std=means,
                intervals=sorted(found, key=lambda i: COLUMNS.index(i['column'])))


def verdict_table(data: Dict) -> str:
    """Markdown: per metric, both models' mean ± std, the delta, its interval,
    the verdict and the smallest true difference the comparison calls 80% of
    the time (``intervals.detectable_effect``)."""
    from ..report import markdown_table
    steps, twin = data['steps'], data['twin']
    rows = []
    for i in data['intervals']:
        cells = []
        for model in (steps, twin):
            m = data['mean_std'][model][i['column']]
            cells.append(f"{m['mean']:.1f} ± {m['std']:.1f}")
        rows.append([i['column'], *cells, f"{i['delta']:+.1f}",
                     f"[{i['low']:+.1f}, {i['high']:+.1f}]", i['verdict'],
                     f"±{i['detectable']:.1f}", f"{i['seeds']} × {i['images']}"])
    table = markdown_table(['metric', f'{steps} (mean ± std)', f'{twin} (mean ± std)',
                            'delta', f"{data['intervals'][0]['level']:.0%} interval"
                            if data['intervals'] else 'interval', 'verdict',
                            'detectable (80%)', 'seeds × val images'], rows)
    if any(i['seeds'] == 1 for i in data['intervals']):
        table += ('\n\nOne seed: the interval covers the validation images only, not '
                  'what another seed moves; run several --seeds.')
    return table


def recorded_run(out_dir: str, stem: str, seeds: Sequence[int]) -> Dict:
    """The command and wall time that ``<stem>.json`` in ``out_dir`` records for
    the same seeds (None each when there is none: a summary made again keeps
    them, and claims none it did not see), and the stages that run reused, which
    its wall time leaves out."""
    unknown = dict(command=None, wall_seconds=None)
    path = osp.join(out_dir, f'{stem}.json')
    if not osp.exists(path):
        return unknown
    with open(path) as f:
        earlier = json.load(f)
    if earlier.get('seeds') != list(seeds):
        return unknown
    kept = {k: earlier.get(k) for k in unknown}
    if earlier.get('reused'):
        kept['reused'] = earlier['reused']
    return kept


def write_summary(data: Dict, out_dir: str, stem: str) -> Dict[str, str]:
    """``<stem>.json`` and ``<stem>.png`` (per-seed figures of both twins per
    metric, and the deltas with their intervals over the band of differences
    too small to be called 80% of the time) in ``out_dir``."""
    paths = dict(json=write_json(out_dir, f'{stem}.json', data))
    intervals = data['intervals']
    fig, axes = new_figure(ncols=len(intervals) + 1, width=3.2, height=3.4)
    for ax, interval in zip(axes, intervals):
        column = interval['column']
        for offset, (model, marker) in enumerate(((data['steps'], 'o'), (data['twin'], 's'))):
            seeds = [r['seed'] for r in data['per_seed'] if column in r.get(model, {})]
            values = [r[model][column]['value'] for r in data['per_seed']
                      if column in r.get(model, {})]
            ax.plot([s + 0.1 * (offset - 0.5) for s in seeds], values, marker,
                    label=model)
        ax.set(title=column, xlabel='seed', xticks=data['seeds'],
               xlim=(min(data['seeds']) - 0.5, max(data['seeds']) + 0.5))
        ax.grid(alpha=.3)
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    for y, interval in enumerate(intervals):
        # grey: the differences this comparison would miss more than 20% of the time
        size = interval['detectable']
        ax.fill_between([-size, size], y - 0.25, y + 0.25, color='0.85',
                        label=f"detectable ({interval['power']:.0%})" if y == 0 else None)
        ax.errorbar(interval['delta'], y, xerr=[[interval['delta'] - interval['low']],
                                               [interval['high'] - interval['delta']]],
                    fmt='o', capsize=4)
    ax.axvline(0, color='k', lw=.8)
    ax.legend(fontsize=7, loc='lower right')
    ax.set(yticks=range(len(intervals)), yticklabels=[i['column'] for i in intervals],
           title='Steps − twin', xlabel=f"delta, {intervals[0]['level']:.0%} interval")
    ax.grid(alpha=.3)
    paths['png'] = save_figure(fig, out_dir, f'{stem}.png')
    return paths
