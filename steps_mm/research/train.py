"""A small, seeded training loop for the research tools' classifiers (CPU)."""
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def seed_everything(seed: int):
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 500) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy (in [0, 1]) of ``model`` in eval mode."""
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


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: float = 1,
          batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.,
          seed: int = 0, max_steps: Optional[int] = None,
          on_step: Optional[Callable[[int, float], None]] = None) -> int:
    """AdamW on shuffled mini-batches for ``epochs`` (or ``max_steps``), cosine
    learning rate, gradient norm clipped at 1; returns the number of steps.
    The shuffling is seeded, so a run repeats exactly on the same machine."""
    steps_per_epoch = -(-len(y) // batch_size)
    total = max_steps if max_steps is not None else \
        max(1, round(epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    model.train()
    step, order = 0, torch.empty(0, dtype=torch.long)
    while step < total:
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(len(y), generator=generator)])
        idx, order = order[:batch_size], order[batch_size:]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.)
        opt.step()
        sched.step()
        step += 1
        if on_step is not None:
            on_step(step, loss.item())
    return total
