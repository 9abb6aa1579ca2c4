"""The shortcut ratio of the StepsNet paper (Fig. 2): ``gamma_l = std(z_0) /
std(z_l)``, the std of a stage's input over the std of the feature after its
``l``-th block, for every block of every ``StepsStage`` in forward order.

- sequential: ``z_l`` is the stage's running feature after block ``l``;
- steps: a block of step ``i`` works on the first ``C_i`` channels, so both its
  output and ``z_0`` are taken on those channels (``z_0[:C_i]``);
- parallel: ``z_l = z_0 + f_1(z_0) + ... + f_l(z_0)``, the partial sum.

Only the block calls are observed (forward hooks; in the parallel layout the
residual branch is wrapped), so the same code serves every backbone family,
including ``StepsViT`` which runs its blocks through unregistered segment stages.
"""
from contextlib import contextmanager
from typing import Dict, List

import torch
import torch.nn as nn

from ..models import StepsStage


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
        self.total = None  # parallel layout: the running sum

    def see_input(self, k: int, x: torch.Tensor):
        """Block ``k``'s input; the first block of a step brings the channels of
        the stage input that join at that step."""
        step, width, first = self.steps[k]
        dim = self.stage.channel_dim
        if k == 0:
            self.z0 = x.detach()
        elif first and x.size(dim) > self.z0.size(dim):
            have = self.z0.size(dim)
            fresh = x.detach().narrow(dim, have, x.size(dim) - have)
            self.z0 = torch.cat([self.z0, fresh], dim)

    def see_state(self, k: int, state: torch.Tensor):
        step, width, _ = self.steps[k]
        z0 = self.z0.narrow(self.stage.channel_dim, 0, width)
        self.records.append(dict(stage=self.name, block=k, step=step, width=width,
                                 gamma=(z0.float().std() / state.float().std()).item()))

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


# ---- the study of tools/shortcut_ratio.py -------------------------------------------
def summarize(records: List[Dict], points=(0.25, 0.5, 0.75, 1.0)) -> Dict:
    """gamma at a few normalised depths (the nearest block), its minimum and mean."""
    gammas = [r['gamma'] for r in records]
    at = {p: min(records, key=lambda r: abs(r['depth'] - p))['gamma'] for p in points}
    return dict(at=at, min=min(gammas), mean=sum(gammas) / len(gammas))


def run_study(blocks=(12, 96), width: int = 64,
              layouts=('sequential', 'steps', 'parallel'), batch: int = 64,
              train_steps: int = 60, lr: float = 1e-3, seed: int = 0,
              quiet: bool = False) -> List[Dict]:
    """For each depth and layout: a DeiT-like model (``models.deit_like``, same
    number of blocks in every layout, as the paper's Fig. 2), gamma on a batch
    of validation digits at initialisation and after ``train_steps`` steps on
    the training digits."""
    from .data import mnist_subset
    from .models import deit_like
    from .report import Progress
    from .train import evaluate, seed_everything, train
    (x_train, y_train), (x_val, y_val) = mnist_subset(seed=0)
    images = x_val[:batch]
    progress = Progress(len(blocks) * len(layouts), quiet)
    out = []
    for depth in blocks:
        for layout in layouts:
            seed_everything(seed)
            model = deit_like(width, depth, layout)
            run = dict(layout=layout, blocks=depth, width=width, seed=seed,
                       init=shortcut_ratios(model, images))
            if train_steps:
                train(model, x_train, y_train, max_steps=train_steps, lr=lr,
                      seed=seed)
                run['trained'] = shortcut_ratios(model, images)
                run['train_steps'] = train_steps
                run['val_acc'] = evaluate(model, x_val, y_val)[1]
            out.append(run)
            progress.step(f'{layout} {depth} blocks: min gamma '
                          f"{summarize(run.get('trained', run['init']))['min']:.3f}")
    return out


def study_table(runs: List[Dict]) -> str:
    from .report import markdown_table
    rows = []
    for run in runs:
        for phase in ('init', 'trained'):
            if phase not in run:
                continue
            s = summarize(run[phase])
            when = 'init' if phase == 'init' else f"{run['train_steps']} steps"
            acc = f"{100 * run['val_acc']:.1f}" if phase == 'trained' else '—'
            rows.append([run['layout'], run['blocks'], when]
                        + [f'{s["at"][p]:.3f}' for p in sorted(s['at'])]
                        + [f"{s['min']:.3f}", f"{s['mean']:.3f}", acc])
    return markdown_table(['layout', 'blocks', 'when', 'γ@0.25', 'γ@0.5', 'γ@0.75',
                           'γ@1', 'min γ', 'mean γ', 'val acc (%)'], rows)


def plot_study(runs: List[Dict], out_dir: str) -> str:
    from .report import new_figure, save_figure
    depths = sorted({r['blocks'] for r in runs})
    fig, axes = new_figure(len(depths))
    colours = dict(sequential='C0', steps='C1', parallel='C2')
    for ax, depth in zip(axes, depths):
        for run in (r for r in runs if r['blocks'] == depth):
            for phase, style in (('init', ':'), ('trained', '-')):
                if phase in run:
                    recs = run[phase]
                    when = 'init' if phase == 'init' else 'trained'
                    label = f"{run['layout']} ({when})"
                    ax.plot([r['depth'] for r in recs], [r['gamma'] for r in recs],
                            style, color=colours.get(run['layout']), label=label)
        ax.set_title(f'DeiT-like, {depth} blocks')
        ax.set_xlabel('normalised depth')
        ax.set_ylabel('shortcut ratio γ = std(z0) / std(zl)')
        ax.set_yscale('log')
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir, 'shortcut_ratio.png')
