"""Runs the research studies' training jobs, in worker processes with one torch
thread each (tiny models gain nothing from more threads, and every core then
trains its own model), and prints progress lines with an ETA on stderr.

A job is a module-level function called with keyword arguments plus
``report(fraction, message)``, which it calls as it goes (say once an epoch).
Results come back in job order, and a job's result does not depend on the
worker or the order it ran in (every job seeds itself). With ``cache_dir``,
each finished job's (JSON) result is kept there under a name made from its
function and arguments, so an interrupted study run again with the same
arguments picks up where it stopped.

``run_study`` is the skeleton of a study: its jobs, then its summary of their
results (tables, verdicts, plots).
"""
import hashlib
import importlib
import json
import multiprocessing as mp
import os
import os.path as osp
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional


@dataclass
class Job:
    """``fn`` (``'module:function'``) called with ``kwargs``; ``cost`` weighs it
    for the ETA (e.g. blocks x epochs); ``name`` labels its progress lines."""
    fn: str
    kwargs: Dict = field(default_factory=dict)
    cost: float = 1.
    name: str = ''


def cache_path(cache_dir: str, job: Job) -> str:
    """The file of ``job``'s result: its name, then a hash of what it runs."""
    key = json.dumps([job.fn, job.kwargs], sort_keys=True, default=repr)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    name = re.sub(r'[^A-Za-z0-9.-]+', '_', job.name or job.fn).strip('_')
    return osp.join(cache_dir, f'{name}-{digest}.json')


def _store(path: str, result) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(result, f)
    os.replace(path + '.tmp', path)  # never a half-written result


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
    (elapsed 5m02s, eta 40m11s)`` on stderr; once ``concurrency`` jobs have
    each reported (say, their first epoch), one line with the expected run
    time of the whole study."""

    def __init__(self, title: str, jobs: List[Job], quiet: bool = False,
                 concurrency: int = 1):
        self.title, self.jobs, self.quiet = title, jobs, quiet
        self.concurrency = concurrency
        self.reported = set()  # jobs that reported progress in this run
        self.expected = None  # the expected run time in seconds, once said
        self.fraction = [0.] * len(jobs)
        self.total = sum(j.cost for j in jobs) or 1.
        self.finished = set()
        self.kept = 0.  # the share of the work kept from an earlier run
        self.start = time.time()

    def keep(self, index: int):
        """Job ``index``'s result was kept from an earlier run."""
        self.fraction[index] = 1.
        self.finished.add(index)
        self.kept += self.jobs[index].cost / self.total

    def update(self, index: int, fraction: float, message: str, finished=False):
        if index in self.finished:  # a progress line that arrived late
            return
        self.fraction[index] = 1. if finished else min(max(fraction, 0.), 1.)
        if finished:
            self.finished.add(index)
        self.reported.add(index)  # not the jobs kept from an earlier run
        if self.quiet:
            return
        done = sum(j.cost * f for j, f in zip(self.jobs, self.fraction)) / self.total
        elapsed = time.time() - self.start
        ran = done - self.kept
        eta = _duration(elapsed * (1 - done) / ran) if ran > 0 else '?'
        if self.expected is None and ran > 0 and \
                len(self.reported) >= self.concurrency:
            self.expected = elapsed * (1 - self.kept) / ran
            print(f'[{self.title}] expected run time: about '
                  f'{_duration(self.expected)} in all, {eta} left (from the first '
                  f'{_duration(elapsed)} of {len(self.jobs)} jobs, {self.concurrency} '
                  f'at a time, weighted by cost; the eta below follows the run)',
                  file=sys.stderr, flush=True)
        print(f'[{self.title} {100 * done:5.1f}% | {len(self.finished)}/{len(self.jobs)} '
              f'jobs done] {self.jobs[index].name}: {message} '
              f'(elapsed {_duration(elapsed)}, eta {eta})', file=sys.stderr, flush=True)


def run_jobs(jobs: List[Job], workers: int = 1, title: str = 'jobs',
             quiet: bool = False, threads: int = 1,
             cache_dir: Optional[str] = None) -> List:
    """Run ``jobs``, the costliest first (so that the last minutes do not run
    on one worker); ``workers`` processes (1: in this process, one after the
    other). Returns their results in job order. ``cache_dir``: keep each
    result there and reuse the results kept by an earlier run."""
    if not jobs:
        return []
    board = ProgressBoard(title, jobs, quiet)
    results: List[Optional[object]] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        path = cache_dir and cache_path(cache_dir, job)
        if path and osp.isfile(path):
            with open(path) as f:
                results[i] = json.load(f)
            board.keep(i)
        else:
            todo.append(i)
    todo.sort(key=lambda i: -jobs[i].cost)  # stable: equal costs keep job order
    board.concurrency = max(1, min(workers, len(todo)))
    if len(todo) < len(jobs) and not quiet:
        print(f'[{title}] {len(jobs) - len(todo)} of {len(jobs)} jobs kept from an '
              f'earlier run in {cache_dir}', file=sys.stderr, flush=True)

    def finish(i, result):
        results[i] = result
        if cache_dir:
            _store(cache_path(cache_dir, jobs[i]), result)
        board.update(i, 1., 'done', finished=True)

    if workers <= 1 or len(todo) <= 1:
        import torch
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for i in todo:
                finish(i, _call(jobs[i].fn, jobs[i].kwargs,
                                lambda f, m, i=i: board.update(i, f, m)))
            return results
        finally:
            torch.set_num_threads(previous)
    # spawn: a forked child of a process that has used OpenMP can hang
    context = mp.get_context('spawn')
    queue = context.Queue()
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=context,
                             initializer=_init_worker,
                             initargs=(queue, threads)) as pool:
        futures = {pool.submit(_run_in_worker, i, jobs[i].fn, jobs[i].kwargs): i
                   for i in todo}
        pending = set(futures)
        while pending:
            while not queue.empty():
                board.update(*queue.get())
            for future in [f for f in pending if f.done()]:
                pending.remove(future)
                finish(futures[future], future.result())  # re-raises its error
            time.sleep(0.2)
        while not queue.empty():
            queue.get()
    return results


def run_study(title: str, cfg, jobs: List[Job],
              summarize: Callable[[object, List, Optional[str]], Dict],
              workers: int = 2, out_dir: Optional[str] = None, quiet: bool = False,
              cache_dir: Optional[str] = None) -> Dict:
    """A study run: ``jobs`` (see ``run_jobs``), then ``summarize(cfg, runs,
    out_dir)``, which returns the study's ``runs`` (in the order it reports
    them), its tables and verdicts, its ``report`` (Markdown) and its ``plots``
    (name -> PNG written to ``out_dir``; none without one). Returns
    ``config`` (the dataclass ``cfg`` as a dict), ``seconds`` and the summary."""
    start = time.time()
    runs = run_jobs(jobs, workers, title, quiet, cache_dir=cache_dir)
    summary = summarize(cfg, runs, out_dir)
    return dict(config=asdict(cfg), seconds=time.time() - start, **summary)
