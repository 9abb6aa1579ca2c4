"""What a comparison will cost: measured per-stage costs and the wall-time estimate.

``COSTS`` holds, per pair and stage (the pretraining, or a fine-tuning head), the
seconds each twin's stage took on 2 CPU cores with both twins side by side (one
torch thread each, as ``run_compare`` runs them): seconds per pretraining epoch or
per fine-tuning iteration, the rest of the training process (start-up, model
build, checkpoint) and the whole ``mim test`` process. ``estimate`` adds up the
stages a comparison will train or test (``chain.plan_chain``: reused stages cost
nothing) per twin, takes the slower twin per seed (the twins of a seed run at the
same time; ``--serial``: one after the other, the sum) and adds the seeds. A pair
or head with no measurement is named as unknown, never guessed.

``measure`` reads a finished stage's costs from its job dir (``train.log``'s
timestamps of the first and last logged iteration, ``stage.json`` or the files'
times for the whole processes); ``python -m steps_lab.compare.costs JOB_DIR...``
prints them as table rows, to measure a pair or head not in ``COSTS`` yet.
"""
import os.path as osp
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..demo.chain import DEFAULT_HEADS, ChainRecipe, ChainStage, recorded_seconds


@dataclass(frozen=True)
class StageCost:
    """One twin's stage on 2 cores beside the other twin: ``unit`` seconds per
    pretraining epoch or fine-tuning iteration, ``fixed`` seconds of the training
    process besides (start-up, model build, checkpoint), ``test`` seconds of the
    whole ``mim test`` process (the compare's 192 classification / 128 det-seg
    validation images)."""
    unit: float
    fixed: float
    test: float

    def seconds(self, units: int, action: str = 'train') -> float:
        if action == 'reuse':
            return 0.0
        if action == 'test':
            return self.test
        return self.fixed + units * self.unit + self.test


#: (pair, 'pretrain' or head) -> (the Steps model's cost, its twin's).
#: Measured with ``python -m steps_lab.compare.costs`` on finished stages of seed 0:
#: ConvNeXt-T's pretraining, Mask R-CNN and UperNet in the long-schedule compare
#: (``tools/demo.py --compare --model convnext-t --seeds 0 1 2 --det-iters 540
#: --seg-iters 180``, 6 Dec 2026), ResNet-50's in the same long compare (7 Dec 2026),
#: the heads in ``--compare --head cascade|dino|mask2former --seeds 0`` runs (7 Dec
#: 2026). All on 2 CPU cores, both twins side by side, while test suites and other
#: training runs shared the machine (load average 3.5 to 11 on its 2 cores; the logged
#: Mask R-CNN iteration took 1.7 s early on and 6.9 s at the end), so a quiet machine
#: is faster. Swin-T's and DeiT-S's are the exception: measured in their long
#: compares with nothing else running (load 2, their own twins; seed 0, but Swin-T's
#: pretraining on seed 1, whose seed-0 pretraining had shared the machine).
#: ``fixed`` holds what the first logged iteration's line leaves out (start-up, the
#: first 10 iterations' extra, the checkpoint). Pairs and heads not
#: listed have no measurement yet: the estimate names them.
COSTS: Dict[Tuple[str, str], Tuple[StageCost, StageCost]] = {
    ('convnext-t', 'pretrain'): (StageCost(unit=10.2, fixed=9.1, test=17.6),
                                 StageCost(unit=11.1, fixed=13.3, test=17.8)),
    ('convnext-t', 'mask-rcnn'): (StageCost(unit=3.08, fixed=28.7, test=224.7),
                                  StageCost(unit=3.15, fixed=18.9, test=234.5)),
    ('convnext-t', 'upernet'): (StageCost(unit=7.32, fixed=100.7, test=243.8),
                                StageCost(unit=7.58, fixed=93.9, test=193.1)),
    ('convnext-t', 'cascade'): (StageCost(unit=4.39, fixed=48.1, test=207.0),
                                StageCost(unit=4.44, fixed=48.2, test=198.1)),
    ('swin-t', 'pretrain'): (StageCost(unit=13.5, fixed=11.3, test=10.6),
                             StageCost(unit=13.0, fixed=11.1, test=11.0)),
    ('swin-t', 'mask-rcnn'): (StageCost(unit=1.42, fixed=12.9, test=51.8),
                              StageCost(unit=1.38, fixed=13.1, test=48.4)),
    ('swin-t', 'upernet'): (StageCost(unit=1.64, fixed=12.1, test=37.3),
                            StageCost(unit=1.61, fixed=13.6, test=36.7)),
    ('deit-s', 'pretrain'): (StageCost(unit=8.82, fixed=7.8, test=7.9),
                             StageCost(unit=8.45, fixed=7.9, test=7.8)),
    ('deit-s', 'mask-rcnn'): (StageCost(unit=1.73, fixed=11.1, test=75.6),
                              StageCost(unit=1.70, fixed=13.1, test=82.1)),
    ('deit-s', 'upernet'): (StageCost(unit=1.43, fixed=13.1, test=34.2),
                            StageCost(unit=1.45, fixed=13.3, test=33.6)),
    ('resnet-50', 'pretrain'): (StageCost(unit=5.18, fixed=11.9, test=12.7),
                                StageCost(unit=4.73, fixed=12.6, test=12.5)),
    ('resnet-50', 'mask-rcnn'): (StageCost(unit=2.62, fixed=1.5, test=79.9),
                                 StageCost(unit=2.61, fixed=1.2, test=80.5)),
    ('resnet-50', 'upernet'): (StageCost(unit=3.15, fixed=27.8, test=64.1),
                               StageCost(unit=3.14, fixed=29.0, test=67.2)),
    ('resnet-50', 'dino'): (StageCost(unit=3.15, fixed=24.0, test=60.3),
                            StageCost(unit=3.14, fixed=24.2, test=64.4)),
    ('resnet-50', 'mask2former'): (StageCost(unit=3.18, fixed=30.6, test=56.0),
                                   StageCost(unit=2.96, fixed=28.7, test=64.0)),
}


def cost_key(pair: str, item: ChainStage) -> Tuple[str, str]:
    """``COSTS``'s key of a planned stage: the pretraining, or the head."""
    return pair, ('pretrain' if item.stage == 'pretrain'
                  else item.head or DEFAULT_HEADS[item.stage])


def units(item: ChainStage, recipe: ChainRecipe) -> int:
    return recipe.pretrain_epochs if item.stage == 'pretrain' else recipe.iters(item.stage)


@dataclass
class Estimate:
    """Wall seconds of the stages with measured costs, and the pair/stage keys
    of those without (their time is not in ``seconds``)."""
    seconds: float
    unknown: List[str]

    def __str__(self) -> str:
        if not self.unknown:
            return f'about {_duration(self.seconds)}'
        if self.seconds:
            return f'at least {_duration(self.seconds)} ({self.missing})'
        return f'unknown ({self.missing})'

    @property
    def missing(self) -> str:
        return (f'no measured costs for {", ".join(self.unknown)} in '
                'steps_lab/compare/costs.py')


def _duration(seconds: float) -> str:
    return f'{seconds / 60:.0f} min' if seconds >= 90 else f'{seconds:.0f} s'


#: plans: seed -> one list of planned stages per twin (Steps model first)
Plans = Dict[int, Sequence[Sequence[ChainStage]]]


def estimate(pair: str, plans: Plans, recipe: ChainRecipe, parallel: bool = True,
             costs: Optional[Dict] = None,
             running: Optional[Dict[Tuple[int, int, str], float]] = None) -> Estimate:
    """The wall time of ``plans`` by ``costs`` (default ``COSTS``): per seed,
    each twin's stages added up, the slower twin's sum when ``parallel`` (both
    sums otherwise), the seeds added. ``running`` maps ``(seed, side, stage key)``
    of stages under way to their seconds so far, which their cost is reduced by."""
    costs = COSTS if costs is None else costs
    running = running or {}
    total, unknown = 0.0, []
    for seed, sides in plans.items():
        sums = []
        for side, items in enumerate(sides):
            seconds = 0.0
            for item in items:
                if item.action == 'reuse':
                    continue
                key = cost_key(pair, item)
                if key not in costs:
                    if ' '.join(key) not in unknown:
                        unknown.append(' '.join(key))
                    continue
                cost = costs[key][side].seconds(units(item, recipe), item.action)
                seconds += max(0.0, cost - running.get((seed, side, item.key), 0.0))
            sums.append(seconds)
        total += (max(sums) if parallel else sum(sums)) if sums else 0.0
    return Estimate(total, unknown)


class Progress:
    """``run_chain``'s ``progress`` for every twin and seed of a comparison: at
    each stage that trains or tests, ``stage i of n``, the time since the start and
    the estimate of what is left (the stages not finished yet, by ``COSTS``)."""

    def __init__(self, pair: str, plans: Plans, recipe: ChainRecipe, models,
                 parallel: bool = True, echo: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.time):
        self.pair, self.recipe, self.models, self.parallel = pair, recipe, models, parallel
        self.echo, self.clock, self.start = echo, clock, clock()
        self.left = {seed: [list(items) for items in sides] for seed, sides in plans.items()}
        self.total = sum(item.action != 'reuse' for sides in plans.values()
                         for items in sides for item in items)
        self.started = 0
        self.since = {}  # (seed, side, stage key) of the stages under way -> start
        self.lock = threading.Lock()

    def for_side(self, seed: int, side: int) -> Callable[[ChainStage, str], None]:
        return lambda item, event: self.update(seed, side, item, event)

    def update(self, seed: int, side: int, item: ChainStage, event: str):
        with self.lock:
            if event == 'done':
                self.left[seed][side] = [i for i in self.left[seed][side]
                                         if i.key != item.key]
                self.since.pop((seed, side, item.key), None)
                return
            if item.action == 'reuse':
                return
            self.started += 1
            now = self.clock()
            self.since[(seed, side, item.key)] = now
            left = estimate(self.pair, self.left, self.recipe, self.parallel,
                            running={k: now - t for k, t in self.since.items()})
            elapsed = now - self.start
            self.echo(f'[demo] stage {self.started} of {self.total}: '
                      f'{self.models[side].name} seed {seed} {item.key}'
                      + (f' ({item.head})' if item.head else '') + ' '
                      f'({"test only" if item.action == "test" else "train and test"}); '
                      f'{_duration(elapsed)} elapsed, {_left(left)}')


def _left(left: Estimate) -> str:
    if not left.unknown:
        return f'about {_duration(left.seconds)} left'
    if left.seconds:
        return f'at least {_duration(left.seconds)} left (unknown for {", ".join(left.unknown)})'
    return f'time left unknown ({", ".join(left.unknown)})'


# ---- measuring ------------------------------------------------------------------
_LINE = re.compile(r'^(\d\d/\d\d \d\d:\d\d:\d\d) - mmengine - INFO - '
                   r'(?:Epoch\(train\) +\[(\d+)\]\[ *(\d+)/(\d+)\]|'
                   r'Iter\(train\) +\[ *(\d+)/(\d+)\])')


def _progress(match) -> Tuple[datetime, float, float]:
    """(time, units done, units in all) of a logged training line: epochs
    (fractional) for mmpretrain's epoch-based lines, iterations otherwise."""
    stamp = datetime.strptime(match.group(1), '%m/%d %H:%M:%S')
    if match.group(2):
        epoch, i, n = (int(match.group(k)) for k in (2, 3, 4))
        return stamp, epoch - 1 + i / n, float('nan')
    return stamp, float(match.group(5)), float(match.group(6))


def measure(job_dir: str, units_done: Optional[int] = None) -> Dict[str, float]:
    """One finished stage's ``StageCost`` fields from its job dir, and its
    ``units`` (epochs or iterations trained: ``units_done``, or read from the
    log). ``unit``: from the timestamps of the first and last logged training
    lines (wall time, as ``time:`` in mmengine's lines is not: it leaves out the
    hooks); ``fixed``: the training process's seconds (``recorded_seconds``) less
    ``units * unit``; ``test``: the test process's seconds."""
    with open(osp.join(job_dir, 'train.log')) as f:
        points = [_progress(m) for m in map(_LINE.match, f) if m]
    if len(points) < 2:
        raise ValueError(f'{job_dir}: fewer than two logged training lines')
    (t0, u0, _), (t1, u1, n) = points[0], points[-1]
    seconds = (t1 - t0).total_seconds() % (366 * 86400)  # the log's dates have no year
    unit = seconds / (u1 - u0)
    done = units_done or (n if n == n else round(u1))
    times = recorded_seconds(job_dir)
    if times.get('train_seconds') is None or times.get('test_seconds') is None:
        raise ValueError(f'{job_dir}: no training and test times (stage.json or logs)')
    return dict(units=done, unit=round(unit, 2 if unit < 10 else 1),
                fixed=round(times['train_seconds'] - done * unit, 1),
                test=times['test_seconds'])


def main(argv: Sequence[str]):
    for job_dir in argv:
        try:
            m = measure(job_dir)
        except (OSError, ValueError) as error:
            print(f'{job_dir}: {error}')
            continue
        print(f'{job_dir}: StageCost(unit={m["unit"]}, fixed={m["fixed"]}, '
              f'test={m["test"]})  # {m["units"]:.0f} units')


if __name__ == '__main__':
    main(sys.argv[1:])
