"""Timing, memory and profiling of training or inference steps, for comparing
models in one process: each *step* is a callable that runs one forward (and
backward) pass. Used by ``tools/benchmark.py`` and ``tools/gpu_hours.py``."""
import statistics
import time
from typing import Callable, Dict, Optional

import torch

Step = Callable[[], object]


def synchronizer(device: str) -> Callable[[], None]:
    """What waits for a device's queued work (nothing on the CPU)."""
    if str(device).startswith('cuda'):
        return torch.cuda.synchronize
    return lambda: None


def interleaved_medians(steps: Dict[str, Step], repeats: int, warmup: int = 0,
                        iters: int = 1, device: str = 'cpu',
                        progress: Optional[Callable[[str], None]] = None
                        ) -> Dict[str, float]:
    """Median seconds per step of each named step: ``warmup`` untimed steps of
    each, then ``repeats`` rounds that time ``iters`` steps of each in turn
    (A B C A B C ...), so that a change in the machine's load hits all alike."""
    sync = synchronizer(device)
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    for r in range(repeats):
        for name, step in steps.items():
            sync()
            start = time.perf_counter()
            for _ in range(iters):
                step()
            sync()
            times[name].append((time.perf_counter() - start) / iters)
            if progress:
                progress(f'repeat {r + 1}/{repeats} {name}: {times[name][-1]:.3f} s/step')
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory(step: Step, device: str) -> int:
    """Bytes a step allocates at its peak beyond what existed before it: the
    CUDA allocator's peak on CUDA; on the CPU the running sum of the tensor
    allocations and frees that torch's profiler records."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        # ops carry their own net allocations; '[memory]' events are the frees
        # and allocations outside any op (tensors Python let go of)
        live += event.cpu_memory_usage if event.name == '[memory]' \
            else event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def profile_table(step: Step, top: int) -> str:
    """The ``top`` ops of one step by self CPU time (where the time goes)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=top,
                                     max_name_column_width=48)


# Op categories of a breakdown: what the time of a step is spent on.
_MATMUL = ('mm', 'addmm', 'bmm', 'baddbmm', 'convolution_backward',
           'mkldnn_convolution', '_slow_conv2d_forward', '_slow_conv2d_backward',
           'cudnn_convolution', '_convolution_depthwise')
_COPY = ('copy_', 'cat', 'clone', 'contiguous', 'index_select', 'roll',
         'constant_pad_nd', 'index_add_', 'index', 'repeat')
CATEGORIES = ('matmul & conv', 'attention', 'copies & layout', 'norms',
              'activations & elementwise')


def op_category(name: str) -> str:
    """The ``CATEGORIES`` entry of an aten op (``aten::mm`` -> 'matmul & conv')."""
    op = name.split('::')[-1]
    if op in _MATMUL or op.startswith(('_slow_conv', 'thnn_conv')):
        return 'matmul & conv'
    if 'attention' in op or op.startswith(('_softmax', 'softmax')):
        return 'attention'
    if op in _COPY:
        return 'copies & layout'
    if 'norm' in op:
        return 'norms'
    return 'activations & elementwise'


def breakdown(step: Step, steps: int = 3) -> Dict[str, float]:
    """Milliseconds of self CPU time per op category, the median of ``steps``
    profiled steps (where the time goes, comparable across models)."""
    from torch.profiler import ProfilerActivity, profile
    runs = []
    for _ in range(steps):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        ms = dict.fromkeys(CATEGORIES, 0.)
        for event in prof.key_averages():
            if event.key.startswith('aten::'):
                ms[op_category(event.key)] += event.self_cpu_time_total / 1e3
        runs.append(ms)
    return {c: statistics.median(r[c] for r in runs) for c in CATEGORIES}


def count_ops(step: Step) -> int:
    """The aten ops one step dispatches (forward and backward, views
    included): each costs host time, and each that computes launches a GPU
    kernel, which is what bounds a GPU step whose kernels have little work."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Counter.count += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        step()
    return Counter.count
