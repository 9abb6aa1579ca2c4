"""Runs the research studies' training jobs, in worker processes with one torch
thread each (tiny models gain nothing from more threads, and every core then
trains its own model), and prints progress lines with an ETA on stderr.

A job is a module-level function called with keyword arguments plus
``report(fraction, message)``, which it calls as it goes (say once an epoch).
Results come back in job order, and a job's result does not depend on the
worker or the order it ran in (every job seeds itself).
"""
import importlib
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional


@dataclass
class Job:
    """``fn`` (``'module:function'``) called with ``kwargs``; ``cost`` weighs it
    for the ETA (e.g. blocks x epochs); ``name`` labels its progress lines."""
    fn: str
    kwargs: Dict = field(default_factory=dict)
    cost: float = 1.
    name: str = ''


def _call(fn: str, kwargs: Dict, report: Callable[[float, str], None]):
    module, name = fn.split(':')
    return getattr(importlib.import_module(module), name)(**kwargs, report=report)


_QUEUE = None  # a worker's progress queue


def _init_worker(queue, threads: int):
    global _QUEUE
    import torch
    torch.set_num_threads(threads)
    _QUEUE = queue


def _run_in_worker(index: int, fn: str, kwargs: Dict):
    def report(fraction: float, message: str):
        _QUEUE.put((index, fraction, message))
    return _call(fn, kwargs, report)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f'{seconds // 60}m{seconds % 60:02d}s'
    return f'{seconds // 3600}h{seconds // 60 % 60:02d}m'


class ProgressBoard:
    """Job-weighted progress: ``[title 12.3% | 3/30 jobs done] name: message
    (elapsed 5m02s, eta 40m11s)`` on stderr."""

    def __init__(self, title: str, jobs: List[Job], quiet: bool = False):
        self.title, self.jobs, self.quiet = title, jobs, quiet
        self.fraction = [0.] * len(jobs)
        self.total = sum(j.cost for j in jobs) or 1.
        self.finished = set()
        self.start = time.time()

    def update(self, index: int, fraction: float, message: str, finished=False):
        if index in self.finished:  # a progress line that arrived late
            return
        self.fraction[index] = 1. if finished else min(max(fraction, 0.), 1.)
        if finished:
            self.finished.add(index)
        if self.quiet:
            return
        done = sum(j.cost * f for j, f in zip(self.jobs, self.fraction)) / self.total
        elapsed = time.time() - self.start
        eta = _duration(elapsed * (1 - done) / done) if done > 0 else '?'
        print(f'[{self.title} {100 * done:5.1f}% | {len(self.finished)}/{len(self.jobs)} '
              f'jobs done] {self.jobs[index].name}: {message} '
              f'(elapsed {_duration(elapsed)}, eta {eta})', file=sys.stderr, flush=True)


def run_jobs(jobs: List[Job], workers: int = 1, title: str = 'jobs',
             quiet: bool = False, threads: int = 1) -> List:
    """Run ``jobs``; ``workers`` processes (1: in this process, one after the
    other). Returns their results in job order."""
    if not jobs:
        return []
    board = ProgressBoard(title, jobs, quiet)
    if workers <= 1:
        import torch
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            results = []
            for i, job in enumerate(jobs):
                results.append(_call(job.fn, job.kwargs,
                                     lambda f, m, i=i: board.update(i, f, m)))
                board.update(i, 1., 'done', finished=True)
            return results
        finally:
            torch.set_num_threads(previous)
    # spawn: a forked child of a process that has used OpenMP can hang
    context = mp.get_context('spawn')
    queue = context.Queue()
    results: List[Optional[object]] = [None] * len(jobs)
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context,
                             initializer=_init_worker,
                             initargs=(queue, threads)) as pool:
        futures = {pool.submit(_run_in_worker, i, j.fn, j.kwargs): i
                   for i, j in enumerate(jobs)}
        pending = set(futures)
        while pending:
            while not queue.empty():
                board.update(*queue.get())
            for future in [f for f in pending if f.done()]:
                pending.remove(future)
                i = futures[future]
                results[i] = future.result()  # re-raises a job's error here
                board.update(i, 1., 'done', finished=True)
            time.sleep(0.2)
        while not queue.empty():
            queue.get()
    return results
