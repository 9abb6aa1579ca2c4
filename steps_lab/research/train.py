"""The research tools' training loop: DeiT's recipe where it matters at laptop
scale (CPU, thousands of 28x28 digits).

- AdamW with decoupled weight decay 0.05, none on biases, norms, layer scales,
  position embeddings and class tokens (timm's and DeiT's grouping);
- a linear learning-rate warmup, then a cosine decay to ``min_lr``, per step;
- cross-entropy with label smoothing 0.1;
- gradient norm clipped at 1;
- optionally, random translations of up to 2 pixels (a light stand-in for
  DeiT's RandAugment / Mixup / CutMix, which are made for ImageNet photos).

Batches are drawn from a seeded generator, so a run repeats exactly on the same
machine and thread count. ``fit`` is the one way a study trains a model: on the
MNIST subset, from a model description, seeded.
"""
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

#: parameter names (last component) that never get weight decay, besides 1-D
#: parameters and biases (DeiT's ``no_weight_decay``)
NO_DECAY_NAMES = ('pos_embed', 'cls_token')


@dataclass(frozen=True)
class StudyRecipe:
    """Training hyper-parameters; the defaults are the research tools'."""
    epochs: float = 15
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_epochs: float = 2
    label_smoothing: float = 0.1
    clip_grad: float = 1.
    shift: int = 0  # random translation of up to this many pixels

    def describe(self) -> str:
        return (f'AdamW lr {self.lr:g} (batch {self.batch_size}), weight decay '
                f'{self.weight_decay:g}, {self.warmup_epochs:g} warmup epochs then '
                f'cosine to {self.min_lr:g}, label smoothing {self.label_smoothing:g}, '
                f'gradient clipping at {self.clip_grad:g}'
                + (f', random shifts of up to {self.shift} px' if self.shift else '')
                + f', {self.epochs:g} epochs')

    def with_(self, **changes) -> 'StudyRecipe':
        """This recipe with the non-None ``changes``."""
        return StudyRecipe(**{**asdict(self), **{k: v for k, v in changes.items()
                                                  if v is not None}})


def seed_everything(seed: int):
    torch.manual_seed(seed)


def param_groups(model: nn.Module, weight_decay: float) -> list:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith('.bias') or \
                name.rsplit('.', 1)[-1] in NO_DECAY_NAMES:
            no_decay.append(param)
        else:
            decay.append(param)
    return [dict(params=decay, weight_decay=weight_decay),
            dict(params=no_decay, weight_decay=0.)]


def adamw(groups: list, lr: float) -> torch.optim.AdamW:
    """AdamW, fused where torch has a CPU kernel for it (>= 2.4): per-tensor
    updates took ~15% of a step of these small models."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except RuntimeError:
        return torch.optim.AdamW(groups, lr=lr)


def lr_at(step: int, total: int, warmup: int, recipe: StudyRecipe) -> float:
    """Linear warmup from ``lr / warmup`` to ``lr``, then cosine to ``min_lr``."""
    import math
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return recipe.min_lr + 0.5 * (recipe.lr - recipe.min_lr) * (
        1 + math.cos(math.pi * progress))


def random_shift(x: torch.Tensor, pixels: int, generator: torch.Generator):
    """Each image translated by up to ``pixels`` in each direction (zero fill)."""
    B, _, H, W = x.shape
    padded = F.pad(x, (pixels,) * 4)
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, B), generator=generator)
    rows = (dy[:, None] + torch.arange(H))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(W))[:, None, None, :]
    batch = torch.arange(B)[:, None, None, None]
    return padded[batch, torch.arange(x.shape[1])[None, :, None, None], rows, cols]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 500) -> Tuple[float, float]:
    """Mean cross-entropy (no smoothing) and accuracy (in [0, 1]), eval mode."""
    was_training = model.training
    model.eval()
    loss, correct = 0., 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start:start + batch_size])
        target = y[start:start + batch_size]
        loss += F.cross_entropy(logits, target, reduction='sum').item()
        correct += (logits.argmax(1) == target).sum().item()
    model.train(was_training)
    return loss / len(y), correct / len(y)


def report_epochs(report: Callable[[float, str], None],
                  epochs: float) -> Callable[[int, int, float], None]:
    """An ``on_step`` for ``train`` that calls ``report(fraction, message)``
    once an epoch (a ``runner`` job's progress)."""
    def on_step(step, total, loss):
        epoch = step * epochs / total
        if step == total or int(epoch) != int((step - 1) * epochs / total):
            report(step / total, f'epoch {epoch:.0f}/{epochs:g}, loss {loss:.3f}')
    return on_step


def steps_of(recipe: StudyRecipe, num_samples: int) -> Tuple[int, int]:
    """(total steps, warmup steps) of ``recipe`` on ``num_samples`` samples."""
    per_epoch = -(-num_samples // recipe.batch_size)
    total = max(1, round(recipe.epochs * per_epoch))
    return total, min(total, round(recipe.warmup_epochs * per_epoch))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: StudyRecipe, *,
          seed: int = 0, max_steps: Optional[int] = None,
          on_step: Optional[Callable[[int, int, float], None]] = None) -> Dict:
    """Train ``model`` on ``(x, y)`` with ``recipe``; ``on_step(step, total,
    loss)`` after each step. Returns the number of steps and the mean training
    loss (smoothed targets, train mode) of the last epoch's steps."""
    total, warmup = steps_of(recipe, len(y))
    if max_steps is not None:
        total = min(total, max_steps)
    per_epoch = -(-len(y) // recipe.batch_size)
    generator = torch.Generator().manual_seed(seed)
    opt = adamw(param_groups(model, recipe.weight_decay), recipe.lr)
    model.train()
    order = torch.empty(0, dtype=torch.long)
    recent = []
    for step in range(total):
        for group in opt.param_groups:
            group['lr'] = lr_at(step, total, warmup, recipe)
        if len(order) < recipe.batch_size:
            order = torch.cat([order, torch.randperm(len(y), generator=generator)])
        idx, order = order[:recipe.batch_size], order[recipe.batch_size:]
        images = x[idx]
        if recipe.shift:
            images = random_shift(images, recipe.shift, generator)
        loss = F.cross_entropy(model(images), y[idx],
                               label_smoothing=recipe.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.clip_grad:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad)
        opt.step()
        value = loss.item()
        if not torch.isfinite(loss):
            raise FloatingPointError(f'training diverged at step {step + 1}/{total} '
                                     f'(loss {value}); lower the learning rate '
                                     f'({recipe.lr:g})')
        recent = (recent + [value])[-per_epoch:]
        if on_step is not None:
            on_step(step + 1, total, value)
    return dict(steps=total, last_epoch_loss=sum(recent) / max(len(recent), 1))


def fit(spec: Dict, recipe: StudyRecipe, seed: int, num_train: int, num_val: int,
        report: Callable[[float, str], None],
        watch: Optional[Callable[[nn.Module, int, int], None]] = None,
        curve_train: int = 0) -> Tuple[nn.Module, Dict]:
    """The model of ``spec`` (``models.build``), built after seeding with
    ``seed`` and trained with ``recipe`` on the MNIST subset's ``num_train``
    digits; ``report`` hears of every epoch, and ``watch(model, step, total)``
    sees the model before the first step (step 0) and after every step.
    Returns the trained model and its loss and accuracy on the training and
    the ``num_val`` validation digits (``evaluate``), its steps and seconds.

    ``curve_train``: also record the learning curve, ``history``, one entry at
    the end of every epoch (and at the end of a fractional last one): the
    epoch, its step, the learning rate of its last step, the mean training
    loss of its steps (smoothed targets, train mode), and ``evaluate``'s loss
    and accuracy (eval mode) on the first ``curve_train`` training digits (a
    fixed, class-balanced subset: the split interleaves the classes; all of
    them if ``curve_train >= num_train``) and on the validation digits. The
    evaluations use no random numbers and restore train mode, so what is
    trained is the same with or without a curve; they add their time to
    ``seconds``."""
    from .data import mnist_subset
    from .models import build
    (x_train, y_train), (x_val, y_val) = mnist_subset(num_train, num_val)
    seed_everything(seed)  # the same initial weights for every run of a seed
    model = build(spec)
    log_epoch = report_epochs(report, recipe.epochs)
    total, warmup = steps_of(recipe, len(y_train))
    if watch is not None:
        watch(model, 0, total)
    per_epoch = -(-len(y_train) // recipe.batch_size)
    history, losses = [], []
    x_curve, y_curve = x_train[:curve_train], y_train[:curve_train]

    def record(step):
        curve_loss, curve_acc = evaluate(model, x_curve, y_curve)
        val_loss, val_acc = evaluate(model, x_val, y_val)
        history.append(dict(epoch=step / per_epoch, step=step,
                            lr=lr_at(step - 1, total, warmup, recipe),
                            loss=sum(losses) / len(losses),
                            train_loss=curve_loss, train_acc=curve_acc,
                            val_loss=val_loss, val_acc=val_acc))
        losses.clear()

    def on_step(step, total, loss):
        log_epoch(step, total, loss)
        if watch is not None:
            watch(model, step, total)
        if curve_train:
            losses.append(loss)
            if step % per_epoch == 0 or step == total:
                record(step)
    start = time.time()
    trained = train(model, x_train, y_train, recipe, seed=seed, on_step=on_step)
    train_loss, train_acc = evaluate(model, x_train, y_train)
    val_loss, val_acc = evaluate(model, x_val, y_val)
    out = dict(train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
               val_acc=val_acc, steps=trained['steps'], seconds=time.time() - start)
    if curve_train:
        out.update(curve_train=len(y_curve), history=history)
    return model, out
