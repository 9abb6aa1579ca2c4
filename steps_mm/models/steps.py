"""The generic Steps mechanism, shared by every backbone family.

A stage is described by a *spec*: a list of steps ``[(C_1, D_1), ..., (C_n, D_n)]``
with strictly increasing widths ``C_1 < ... < C_n = C`` (the stage width) and depths
``D_i >= 0``. The input ``x`` of width ``C`` is split into ``x_1 .. x_n`` of widths
``C_1, C_2 - C_1, ...`` and

    y_1 = F_1(x_1),    y_i = F_i(cat(y_{i-1}, x_i)),    output = y_n

where ``F_i`` is a stack of ``D_i`` width-preserving residual blocks at width ``C_i``.
A 1-step spec ``[(C, D)]`` is the ordinary residual stack (the *sequential* layout).
The *parallel* layout (arXiv 2309.08414) sums the residual branches of a step's
blocks, all applied to the step's input: ``y = x + sum_j f_j(x)``.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.fx
import torch.nn as nn
import torch.utils.checkpoint as cp

LAYOUTS = ('sequential', 'steps', 'parallel')
StepSpec = List[Tuple[int, int]]


def run_maybe_checkpointed(fn, x: torch.Tensor, with_cp: bool) -> torch.Tensor:
    """``fn(x)``, recomputed in backward instead of stored when ``with_cp`` and
    gradients flow (``use_reentrant=False``)."""
    if with_cp and x.requires_grad and torch.is_grad_enabled():
        return cp.checkpoint(fn, x, use_reentrant=False)
    return fn(x)


class ResidualBlock(nn.Module):
    """A width-preserving block ``x + residual(x)``.

    Blocks expose their residual branch so that the parallel layout can sum branches
    exactly instead of computing ``block(x) - x`` (which loses the tiny branches of
    layer-scaled blocks to float rounding).
    """

    #: conv/linear layers of the block as the StepsNet paper counts them
    #: (a Transformer block is 5); used by ``steps_mm.analysis``
    layer_count: Optional[int] = None

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    return layout


def validate_spec(spec, stage_width: int, where: str = 'stage',
                  check_width: Optional[Callable[[int], Optional[str]]] = None
                  ) -> StepSpec:
    """Return ``spec`` as a list of ``(width, depth)`` int pairs or raise a ValueError
    that names the problem, the offending step and how to fix it.

    ``check_width(width)`` returns an error message for a width the block cannot take
    (for example attention heads that do not divide it), or None.
    """
    try:
        steps = [(w, d) for w, d in spec]
    except (TypeError, ValueError):
        raise ValueError(f'{where}: a spec is a list of (width, depth) pairs, '
                         f'got {spec!r}') from None
    if not steps:
        raise ValueError(f'{where}: the spec has no steps; give at least '
                         f'[({stage_width}, depth)]')
    for i, (width, depth) in enumerate(steps):
        if not isinstance(width, int) or not isinstance(depth, int):
            raise ValueError(f'{where}, step {i}: width and depth must be ints, '
                             f'got ({width!r}, {depth!r})')
        if width <= 0:
            raise ValueError(f'{where}, step {i}: width must be positive, got {width}')
        if depth < 0:
            raise ValueError(f'{where}, step {i}: depth must be >= 0 '
                             f'(0 appends the channels unprocessed), got {depth}')
        if i and width <= steps[i - 1][0]:
            raise ValueError(
                f'{where}: step widths must be strictly increasing, got '
                f'{[w for w, _ in steps]} (step {i}: {width} <= {steps[i - 1][0]})')
        if check_width is not None and depth > 0:
            problem = check_width(width)
            if problem:
                raise ValueError(f'{where}, step {i}: {problem}')
    if steps[-1][0] != stage_width:
        raise ValueError(
            f'{where}: the last step width must equal the stage width {stage_width}, '
            f'got {steps[-1][0]}; end the spec with ({stage_width}, depth), '
            f'depth 0 if the last channels should pass unprocessed')
    return steps


class StepsStage(nn.ModuleList):
    """Runs width-preserving blocks step by step on growing channel prefixes.

    The blocks are held flat in forward order (``stage[k]``), so parameter names are
    those of an ordinary residual stage (``stages.2.5.gamma``) and a sequential spec
    has the exact key names of the baseline's checkpoints.

    Args:
        spec: ``[(width, depth), ...]``, already validated.
        block_factory: ``block_factory(width, block_index)`` builds one block;
            ``block_index`` counts the blocks of this stage in forward order.
        channel_dim: the channel dimension of the tensors (1 for NCHW, -1 for NHWC
            or tokens).
        parallel: sum the residual branches of each step (the parallel layout).
        with_cp: gradient checkpointing per block (``use_reentrant=False``).
    """

    def __init__(self, spec: StepSpec,
                 block_factory: Callable[[int, int], nn.Module],
                 channel_dim: int = 1, parallel: bool = False,
                 with_cp: bool = False):
        blocks, index = [], 0
        for width, depth in spec:
            for _ in range(depth):
                blocks.append(block_factory(width, index))
                index += 1
        super().__init__(blocks)
        self.spec = [tuple(s) for s in spec]
        self.channel_dim = channel_dim
        self.parallel = parallel
        self.with_cp = with_cp
        if parallel and not all(isinstance(b, ResidualBlock) for b in self):
            raise TypeError('the parallel layout needs blocks derived from '
                            'ResidualBlock (it sums their residual branches)')
        # The static plan of ``forward``: the steps that have blocks, as
        # (first block, end block), and the channel split of the input feeding
        # them; a trailing chunk (channels no step processes) is appended last.
        self._steps, self._split, start, done = [], [], 0, 0
        for width, depth in self.spec:
            if depth:
                self._steps.append((start, start + depth))
                self._split.append(width - done)
                start, done = start + depth, width
        if self._steps and done < self.width:
            self._split.append(self.width - done)

    @property
    def width(self) -> int:
        return self.spec[-1][0]

    def extra_repr(self) -> str:
        steps = ', '.join(f'{w}x{d}' for w, d in self.spec)
        return f'steps=[{steps}]' + (', parallel' if self.parallel else '')

    def call(self, fn, x):
        """``fn(x)`` with this stage's checkpointing choice."""
        return run_maybe_checkpointed(fn, x, self.with_cp)

    def _run_step(self, blocks: Sequence[nn.Module], y: torch.Tensor) -> torch.Tensor:
        if self.parallel:  # every branch sees the step's input
            out = y
            for block in blocks:
                out = out + self.call(block.residual, y)
            return out
        for block in blocks:
            y = self.call(block, y)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = self.channel_dim
        # Proxies (torch.fx.symbolic_trace) have no sizes to check
        if not isinstance(x, torch.fx.Proxy) and x.size(dim) != self.width:
            raise ValueError(f'{type(self).__name__} expects {self.width} channels '
                             f'in dim {dim}, got input of shape {tuple(x.shape)}')
        if not self._steps:
            return x
        # split once into views; the one copy per step is the cat that joins
        # the next chunk (none for a sequential stage)
        chunks = x.split(self._split, dim) if len(self._split) > 1 else (x,)
        blocks, y = list(self), chunks[0]
        for i, (start, end) in enumerate(self._steps):
            if i:
                y = torch.cat([y, chunks[i]], dim)
            y = self._run_step(blocks[start:end], y)
        if len(self._split) > len(self._steps):
            y = torch.cat([y, chunks[-1]], dim)
        return y
