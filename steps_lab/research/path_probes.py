"""Path probes of a trained Steps classifier without retraining (StepsNet paper,
Tables 6-7): zero the first (slow path) or last (fast path) ``n`` input channels
of a Steps stage, or skip blocks of one step, and measure accuracy.
"""
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from steps_mm.models import StepsStage
from ..paper import STEPS_PROBES
from .runner import Job, run_study
from .train import StudyRecipe


def steps_stages(model: nn.Module) -> List[StepsStage]:
    """The registered stages of ``model`` that have more than one step."""
    return [m for m in model.modules()
            if isinstance(m, StepsStage) and len(m.spec) > 1]


def pick_stage(model: nn.Module, index: int = -1) -> StepsStage:
    stages = steps_stages(model)
    if not stages:
        raise ValueError(f'{type(model).__name__} has no Steps stage (a StepsStage '
                         f"with more than one step); build it with layout='steps'")
    try:
        return stages[index]
    except IndexError:
        raise ValueError(f'stage index {index} out of range: the model has '
                         f'{len(stages)} Steps stages') from None


def _zero(x: torch.Tensor, dim: int, start: int, stop: int) -> torch.Tensor:
    x = x.clone()  # the input may be a view of the caller's tensor
    x.narrow(dim, start, stop - start).zero_()
    return x


@contextmanager
def masked_input(stage: StepsStage, start: int, count: int):
    """Zero channels ``start .. start+count-1`` of ``stage``'s input.

    The channels are zeroed where they enter the stage's computation: at the
    input of the first block of the step they join (block pre-hooks; the stage's
    own forward may run unhooked, as ``StepsViT`` runs it through segment
    stages), and, for channels no step processes, at the stage output."""
    stop, dim = start + count, stage.channel_dim
    if not 0 <= start < stop <= stage.width:
        raise ValueError(f'cannot mask channels {start}..{stop - 1} of a stage of '
                         f'width {stage.width}')
    handles, joined, first = [], 0, 0
    for width, depth in stage.spec:
        lo, hi = max(start, joined), min(stop, width)
        if depth and lo < hi:
            handles.append(stage[first].register_forward_pre_hook(
                lambda m, inputs, lo=lo, hi=hi: (_zero(inputs[0], dim, lo, hi),)))
        if depth:
            joined = width
        first += depth
    if max(start, joined) < stop:  # trailing channels that skip every block
        lo = max(start, joined)
        handles.append(stage.register_forward_hook(
            lambda m, inputs, out: _zero(out, dim, lo, stop)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def skipped_blocks(blocks: Sequence[nn.Module]):
    """Each of ``blocks`` returns its input unchanged (its residual branch is
    dropped), as stochastic depth does at a drop."""
    with ExitStack() as stack:
        for block in blocks:
            handle = block.register_forward_hook(lambda m, inputs, out: inputs[0])
            stack.callback(handle.remove)
        yield


def step_blocks(stage: StepsStage, step: int) -> List[nn.Module]:
    """The blocks of step ``step`` of ``stage``, in forward order."""
    start = sum(depth for _, depth in stage.spec[:step])
    return list(stage)[start:start + stage.spec[step][1]]


def blocks_for_compute(stage: StepsStage, step: int, compute: float) -> int:
    """How many blocks of ``step`` cost about ``compute`` blocks of the stage's
    widest step (a block costs ~ width^2), at least 1 and at most all of them."""
    width, depth = stage.spec[step]
    ratio = (stage.width / width) ** 2
    return max(1, min(depth, round(compute * ratio)))


# ---- Tables 6-7 of tools/probe_paths.py ----------------------------------------------
#: the paper's probes of Steps-DeiT-S on ImageNet (top-1), its Tables 6-7
PAPER_MASKED, PAPER_SLOW = STEPS_PROBES['masked'], STEPS_PROBES['slow']
PAPER_FAST, PAPER_UNMASKED = STEPS_PROBES['fast'], STEPS_PROBES['unmasked']
PAPER_DROPPED = STEPS_PROBES['dropped']  # similar compute dropped from F1 / F2 / F3


def mask_counts(stage: StepsStage, points: int = 5) -> List[int]:
    """Channel counts to mask, as the paper's 32..160 of Steps-DeiT-S's first
    step width 192: ``k/6`` of the first step's width, ``k = 1..points``."""
    first = stage.spec[0][0]
    return sorted({max(1, round(k * first / (points + 1))) for k in range(1, points + 1)})


def probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, stage_index: int = -1,
          drop_compute: float = 1.) -> Dict:
    """Accuracy with the slow / fast path masked and with blocks of each step
    skipped (about ``drop_compute`` blocks of the widest step's compute)."""
    from .train import evaluate
    stage = pick_stage(model, stage_index)
    result = dict(unmasked=evaluate(model, x, y)[1], spec=stage.spec,
                  slow=[], fast=[], dropped=[])
    for n in mask_counts(stage):
        with masked_input(stage, 0, n):
            result['slow'].append(dict(channels=n, acc=evaluate(model, x, y)[1]))
        with masked_input(stage, stage.width - n, n):
            result['fast'].append(dict(channels=n, acc=evaluate(model, x, y)[1]))
    stage_cost = sum(d * w * w for w, d in stage.spec)
    for step, (width, depth) in enumerate(stage.spec):
        if not depth:
            continue
        k = blocks_for_compute(stage, step, drop_compute)
        blocks = step_blocks(stage, step)[-k:]  # the last blocks of the step
        with skipped_blocks(blocks):
            acc = evaluate(model, x, y)[1]
        result['dropped'].append(dict(step=step + 1, width=width, blocks=k,
                                      share=k * width * width / stage_cost, acc=acc))
    return result


def probe_tables(result: Dict) -> str:
    from ..report import markdown_table
    pct = lambda v: f'{100 * v:.1f}'  # noqa: E731
    counts = [r['channels'] for r in result['slow']]
    table6 = markdown_table(
        ['masked input channels', '0'] + [str(n) for n in counts],
        [['first n (slow path)', pct(result['unmasked'])]
         + [pct(r['acc']) for r in result['slow']],
         ['last n (fast path)', pct(result['unmasked'])]
         + [pct(r['acc']) for r in result['fast']]])
    paper6 = markdown_table(
        ['paper, Steps-DeiT-S, ImageNet', '0'] + [str(n) for n in PAPER_MASKED],
        [['first n (slow path)', PAPER_UNMASKED] + list(PAPER_SLOW),
         ['last n (fast path)', PAPER_UNMASKED] + list(PAPER_FAST)])
    table7 = markdown_table(
        ['blocks skipped from', 'width', 'blocks', 'share of stage MACs',
         'accuracy (%)', 'paper (Steps-DeiT-S)'],
        [[f"F{r['step']}", r['width'], r['blocks'], f"{100 * r['share']:.1f}%",
          pct(r['acc']),
          PAPER_DROPPED[r['step'] - 1] if r['step'] <= len(PAPER_DROPPED) else '—']
         for r in result['dropped']])
    return '\n\n'.join([f"Steps stage {result['spec']}, accuracy (%) with input "
                        'channels zeroed (Table 6 form):', table6, paper6,
                        'Accuracy (%) with the last blocks of one step skipped, '
                        'similar compute from each (Table 7 form):', table7])


# ---- the study of tools/probe_paths.py -----------------------------------------------
@dataclass
class ProbeConfig:
    """A steps DeiT-like model shaped as Steps-DeiT-S (blocks split 1/2, 1/4,
    1/4 over widths C/2, ~C/sqrt(2), C), trained with the depth study's recipe."""
    width: int = 32
    blocks: int = 24
    seed: int = 0
    drop_path_rate: float = 0.1
    num_train: int = 4000
    num_val: int = 1000
    recipe: StudyRecipe = field(default_factory=StudyRecipe)

    def spec(self) -> Dict:
        """The model's description, as ``models.build`` takes it."""
        return dict(kind='deit_like', width=self.width, blocks=self.blocks,
                    layout='steps', drop_path_rate=self.drop_path_rate)


#: the --quick run: small enough for the tests (seconds)
QUICK = ProbeConfig(num_train=500, num_val=200, blocks=8,
                    recipe=StudyRecipe(epochs=1, warmup_epochs=.2))


def train_and_probe(cfg: ProbeConfig, save: Optional[str], stage_index: int,
                    drop_compute: float, report) -> Dict:
    """The model of ``cfg``, trained (kept in ``save``) and probed on the
    validation digits (a ``runner`` job)."""
    from .data import mnist_subset
    from .models import save_checkpoint
    from .train import fit
    model, metrics = fit(cfg.spec(), cfg.recipe, cfg.seed, cfg.num_train,
                         cfg.num_val, report)
    if save:
        save_checkpoint(model, cfg.spec(), save, seed=cfg.seed,
                        epochs=cfg.recipe.epochs, val_acc=metrics['val_acc'])
    _, (x_val, y_val) = mnist_subset(cfg.num_train, cfg.num_val)
    return probe(model, x_val, y_val, stage_index, drop_compute)


def summarize(cfg: ProbeConfig, runs: List[Dict], out_dir: Optional[str] = None,
              trained: Optional[str] = None) -> Dict:
    """The probes of the one run as Tables 6-7; ``trained`` says what model
    was probed (by default the one ``cfg`` trains)."""
    trained = trained or (
        f'a steps DeiT-like model of final width {cfg.width}, {cfg.blocks} blocks, '
        f'trained on {cfg.num_train} digits (seed {cfg.seed}; '
        f'{cfg.recipe.describe()}; drop path {cfg.drop_path_rate:g})')
    report = f'### Path probes (StepsNet Tables 6-7 form)\n\nProbes of {trained}, ' \
             f'on the {cfg.num_val} validation digits.\n\n' + probe_tables(runs[0])
    return dict(result=runs[0], report=report)


def run(cfg: ProbeConfig, checkpoint: Optional[str] = None, save: Optional[str] = None,
        stage_index: int = -1, drop_compute: float = 1., quiet: bool = False) -> Dict:
    """Train ``cfg``'s model (or load ``checkpoint``) and probe it on the
    validation digits; ``save`` keeps the trained model."""
    if checkpoint:
        from .data import mnist_subset
        from .models import load_checkpoint
        model, _ = load_checkpoint(checkpoint)
        _, (x_val, y_val) = mnist_subset(cfg.num_train, cfg.num_val)
        return summarize(cfg, [probe(model, x_val, y_val, stage_index, drop_compute)],
                         trained=f'the model of {checkpoint}')
    job = Job('steps_lab.research.path_probes:train_and_probe',
              dict(cfg=cfg, save=save, stage_index=stage_index,
                   drop_compute=drop_compute),
              name=f'steps DeiT-like {cfg.blocks} blocks, width {cfg.width}')
    return run_study('probe model', cfg, [job], summarize, workers=1, quiet=quiet)
