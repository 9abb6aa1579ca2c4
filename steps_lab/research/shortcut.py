"""The shortcut ratio of the StepsNet paper (Fig. 2): ``gamma_l = std(z_0) /
std(z_l)``, the std of a stage's input over the std of the feature after its
``l``-th block, for every block of every ``StepsStage`` in forward order.

- sequential: ``z_l`` is the stage's running feature after block ``l``;
- steps: a block of step ``i`` works on the first ``C_i`` channels. The paper
  does not say what ``z_0`` is inside a step, so two readings are recorded:
  ``gamma`` takes the stage (network) input on those channels, ``z_0[:C_i]``;
  ``gamma_step`` takes the step's own input ``cat(y_{i-1}, x_i)``, so that it
  restarts at each step as the ratio of a sequential stage would;
- parallel: ``z_l = z_0 + f_1(z_0) + ... + f_l(z_0)``, the partial sum (both
  readings are the same there, as in a sequential stage).

Only the block calls are observed (forward hooks; in the parallel layout the
residual branch is wrapped), so the same code serves every backbone family,
including ``StepsViT`` which runs its blocks through unregistered segment stages.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from steps_mm.models import StepsStage
from .runner import Job, run_study
from .train import StudyRecipe

#: the readings of z_0 recorded for every block (see the module docstring)
READINGS = {'gamma': 'network input', 'gamma_step': "step's input"}


def _step_of_blocks(spec) -> List[tuple]:
    """Per block in forward order: ``(step index, step width, first of its step)``."""
    out = []
    for step, (width, depth) in enumerate(spec):
        out += [(step, width, k == 0) for k in range(depth)]
    return out


class _StageRecorder:
    """Turns the block calls of one stage into shortcut ratios, on the fly (no
    feature is kept but the stage input and, in the parallel layout, the sum)."""

    def __init__(self, stage: StepsStage, name: str, records: list):
        self.stage, self.name, self.records = stage, name, records
        self.steps = _step_of_blocks(stage.spec)
        self.z0 = None  # the stage input on the channels seen so far
        self.step_input = None  # the input of the current step
        self.total = None  # parallel layout: the running sum

    def see_input(self, k: int, x: torch.Tensor):
        """Block ``k``'s input; the first block of a step brings the channels of
        the stage input that join at that step."""
        first = self.steps[k][2]
        dim = self.stage.channel_dim
        if first:
            self.step_input = x.detach()
        if k == 0:
            self.z0 = x.detach()
        elif first and x.size(dim) > self.z0.size(dim):
            have = self.z0.size(dim)
            fresh = x.detach().narrow(dim, have, x.size(dim) - have)
            self.z0 = torch.cat([self.z0, fresh], dim)

    def see_state(self, k: int, state: torch.Tensor):
        step, width, _ = self.steps[k]
        z0 = self.z0.narrow(self.stage.channel_dim, 0, width)
        std = state.float().std()
        self.records.append(dict(
            stage=self.name, block=k, step=step, width=width,
            gamma=(z0.float().std() / std).item(),
            gamma_step=(self.step_input.float().std() / std).item()))

    def hook(self, k: int):
        def forward_hook(module, inputs, output):
            self.see_input(k, inputs[0])
            self.see_state(k, output)
        return forward_hook

    def wrap_residual(self, k: int, residual):
        def wrapped(x):
            out = residual(x)
            self.see_input(k, x)
            self.total = (x if k == 0 else self.total) + out.detach()
            self.see_state(k, self.total)
            return out
        return wrapped


@contextmanager
def recording(model: nn.Module):
    """Within the block, forward passes of ``model`` append one dict per block
    call (stage, block, step, width, gamma) to the yielded list."""
    records: List[Dict] = []
    handles, wrapped = [], []
    for name, stage in model.named_modules():
        if not isinstance(stage, StepsStage):
            continue
        recorder = _StageRecorder(stage, name, records)
        for k, block in enumerate(stage):
            if stage.parallel:  # blocks are not called: their branches are summed
                block.residual = recorder.wrap_residual(k, block.residual)
                wrapped.append(block)
            else:
                handles.append(block.register_forward_hook(recorder.hook(k)))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()
        for block in wrapped:
            del block.residual  # back to the class's method


@torch.no_grad()
def shortcut_ratios(model: nn.Module, images: torch.Tensor) -> List[Dict]:
    """One forward pass of ``images`` in eval mode; per block in forward order,
    its stage, index, step, width, ``gamma`` and ``depth`` (block position
    normalised to [0, 1] over all blocks of the model)."""
    was_training = model.training
    model.eval()
    with recording(model) as records:
        model(images)
    model.train(was_training)
    if not records:
        raise ValueError(f'{type(model).__name__} has no StepsStage blocks to '
                         f'record; build it from steps_mm backbones or StepsStage')
    for i, rec in enumerate(records):
        rec['depth'] = i / max(len(records) - 1, 1)
    return records


# ---- the Fig. 2 study of tools/shortcut_ratio.py --------------------------------------
#: the paper's Fig. 2 models, (layout, blocks): DeiT at 122 and 482 layers and
#: Steps-DeiT at 482 layers (a Transformer block counts 5 layers, plus 2)
FIG2_MODELS = (('sequential', 24), ('sequential', 96), ('steps', 96))
#: the paper's panels after initialisation: 1, 10, 20 and 50 epochs of its
#: 300-epoch runs; ours put its 50 at the end of our run and scale the others
PAPER_EPOCHS = (1, 10, 20, 50)


@dataclass
class ShortcutConfig:
    """StepsNet Fig. 2 at laptop scale: the depth study's width and recipe."""
    num_train: int = 4000
    num_val: int = 1000
    width: int = 32
    models: Tuple[Tuple[str, int], ...] = FIG2_MODELS
    seed: int = 0
    batch: int = 256  # validation digits the ratio is measured on
    drop_path_rate: float = 0.1
    recipe: StudyRecipe = field(default_factory=StudyRecipe)


#: the --quick run: small enough for the tests (seconds)
QUICK = ShortcutConfig(num_train=500, num_val=200, models=(('sequential', 4),
                                                           ('sequential', 8),
                                                           ('steps', 8)),
                       batch=32, recipe=StudyRecipe(epochs=1, warmup_epochs=.2))


def checkpoint_steps(total_steps: int, points: Sequence[float] = PAPER_EPOCHS):
    """The training steps at which the panels after initialisation are taken."""
    return [max(1, round(total_steps * p / points[-1])) for p in points]


def train_and_record(layout: str, blocks: int, width: int, seed: int, recipe,
                     drop_path_rate: float, batch: int, num_train: int,
                     num_val: int, report) -> Dict:
    """One Fig. 2 model: shortcut ratios on ``batch`` validation digits at
    initialisation and at ``checkpoint_steps`` of one training run (a
    ``runner`` job)."""
    from steps_mm.analysis import count_blocks_and_layers
    from .data import mnist_subset
    from .train import fit, steps_of
    images = mnist_subset(num_train, num_val)[1][0][:batch]
    marks = {0, *checkpoint_steps(steps_of(recipe, num_train)[0])}
    panels = []

    def watch(model, step, total):
        if step in marks:
            panels.append(dict(step=step, epoch=step * recipe.epochs / total,
                               records=shortcut_ratios(model, images)))
    spec = dict(kind='deit_like', width=width, blocks=blocks, layout=layout,
                drop_path_rate=drop_path_rate)
    model, metrics = fit(spec, recipe, seed, num_train, num_val, report, watch)
    return dict(layout=layout, blocks=blocks, width=width, seed=seed,
                epochs=recipe.epochs, layers=count_blocks_and_layers(model)[1],
                panels=panels, train_acc=metrics['train_acc'],
                val_acc=metrics['val_acc'], seconds=metrics['seconds'])


def measure_checkpoint(path: str, batch: int = 256) -> Dict:
    """The ratios of a trained model (``models.save_checkpoint``, e.g.
    ``tools/probe_paths.py --save``) on ``batch`` validation digits, and its
    accuracy, summarized as a study run is."""
    from steps_mm.analysis import count_blocks_and_layers
    from .data import mnist_subset
    from .models import load_checkpoint
    from .train import evaluate
    model, ckpt = load_checkpoint(path)
    (x_train, y_train), (x_val, y_val) = mnist_subset()
    spec = ckpt['spec']
    run = dict(layout=spec.get('layout', '?'), blocks=spec.get('blocks', '?'),
               layers=count_blocks_and_layers(model)[1], epochs=0,
               train_acc=evaluate(model, x_train, y_train)[1],
               val_acc=evaluate(model, x_val, y_val)[1],
               panels=[dict(step=1, epoch=float('nan'),
                            records=shortcut_ratios(model, x_val[:batch]))])
    return dict(runs=[run], report='\n\n'.join([
        f'### Shortcut ratio of {path}', study_table([run]), accuracy_table([run])]),
        plots={})


def run_label(run: Dict) -> str:
    return f"{'Steps-DeiT' if run['layout'] == 'steps' else 'DeiT'}-like " \
           f"{run['layers']} layers"


def gamma_summary(records: List[Dict], key: str = 'gamma',
                  points=(0.25, 0.5, 0.75, 1.0)) -> Dict:
    """``key`` at a few normalised depths (the nearest block), its min and mean."""
    values = [r[key] for r in records]
    at = {p: min(records, key=lambda r: abs(r['depth'] - p))[key] for p in points}
    return dict(at=at, min=min(values), mean=sum(values) / len(values))


def readings_of(run: Dict) -> List[str]:
    """Both readings for a steps model; one (they coincide) for the others."""
    return list(READINGS) if run['layout'] == 'steps' else ['gamma']


def study_table(runs: List[Dict]) -> str:
    from ..report import markdown_table
    rows = []
    for run in runs:
        for panel in run['panels']:
            when = 'init' if not panel['step'] else \
                f"epoch {panel['epoch']:.2g} (step {panel['step']})"
            for key in readings_of(run):
                s = gamma_summary(panel['records'], key)
                rows.append([run_label(run), when, READINGS[key]]
                            + [f'{s["at"][p]:.3f}' for p in sorted(s['at'])]
                            + [f"{s['min']:.3f}", f"{s['mean']:.3f}"])
    return markdown_table(['model', 'when', 'z_0', 'γ@0.25', 'γ@0.5', 'γ@0.75',
                           'γ@1', 'min γ', 'mean γ'], rows)


def accuracy_table(runs: List[Dict]) -> str:
    from ..report import markdown_table
    return markdown_table(
        ['model', 'blocks', 'train acc (%)', 'test acc (%)'],
        [[run_label(r), r['blocks'], f"{100 * r['train_acc']:.2f}",
          f"{100 * r['val_acc']:.2f}"] for r in runs])


def plot_study(runs: List[Dict], out_dir: str) -> str:
    """Fig. 2's form: a panel per point of training, gamma against depth."""
    from ..report import new_figure, save_figure
    n = max(len(r['panels']) for r in runs)
    fig, axes = new_figure(n, width=3.6, height=3.4)
    colours = ['C0', 'C3', 'C1', 'C2', 'C4']
    for ax, i in zip(axes, range(n)):
        for run, colour in zip(runs, colours):
            if i >= len(run['panels']):
                continue
            panel = run['panels'][i]
            for key, style in zip(readings_of(run), ('-', '--')):
                recs = panel['records']
                label = run_label(run) + (f' (z_0: {READINGS[key]})'
                                          if run['layout'] == 'steps' else '')
                ax.plot([r['depth'] for r in recs], [r[key] for r in recs], style,
                        color=colour, label=label)
        panel = runs[0]['panels'][i]
        ax.set_title('initialisation' if not panel['step']
                     else f"epoch {panel['epoch']:.2g} of {runs[0]['epochs']:g}")
        ax.set_xlabel('normalised depth')
        top = max(r[key] for run in runs for p in run['panels'] for r in p['records']
                  for key in readings_of(run))
        ax.set_ylim(0, max(1.05, 1.05 * top))
        ax.grid(alpha=.3)
    axes[0].set_ylabel('shortcut ratio γ = std(z_0) / std(z_l)')
    axes[-1].legend(fontsize=6)
    return save_figure(fig, out_dir, 'shortcut_ratio.png')


def jobs(cfg: ShortcutConfig) -> List[Job]:
    return [Job('steps_lab.research.shortcut:train_and_record',
                dict(layout=layout, blocks=blocks, width=cfg.width, seed=cfg.seed,
                     recipe=cfg.recipe, drop_path_rate=cfg.drop_path_rate,
                     batch=cfg.batch, num_train=cfg.num_train, num_val=cfg.num_val),
                cost=blocks * cfg.recipe.epochs, name=f'{layout} {blocks} blocks')
            for layout, blocks in cfg.models]


def summarize(cfg: ShortcutConfig, runs: List[Dict], out_dir: Optional[str]) -> Dict:
    """Fig. 2's table, the accuracies and the plot (with ``out_dir``); runs in
    the order of ``cfg.models``."""
    report = '\n\n'.join([
        f'### Shortcut ratio (StepsNet Fig. 2 form)\n\n'
        f'gamma_l = std(z_0) / std(z_l) after every block, on {cfg.batch} '
        f'validation digits, at initialisation and at {len(PAPER_EPOCHS)} points '
        f"of one training run (the paper's epochs {PAPER_EPOCHS} of 50, scaled "
        f'to our {cfg.recipe.epochs:g} epochs); final width {cfg.width}; '
        f'{cfg.recipe.describe()}; drop path {cfg.drop_path_rate:g}; seed '
        f'{cfg.seed}. For the steps model, z_0 is read two ways: the network '
        f"input on the step's channels, and the step's own input "
        f'cat(y_(i-1), x_i).', study_table(runs),
        'Accuracy at the end of the run:', accuracy_table(runs)])
    plots = dict(shortcut=plot_study(runs, out_dir)) if out_dir else {}
    return dict(runs=runs, report=report, plots=plots)


def run(cfg: ShortcutConfig, workers: int = 2, out_dir: Optional[str] = None,
        quiet: bool = False, cache_dir: Optional[str] = None) -> Dict:
    return run_study('Fig. 2', cfg, jobs(cfg), summarize, workers, out_dir, quiet,
                     cache_dir)
