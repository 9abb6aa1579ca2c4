"""The paper's comparison tables from finished runs: each Steps run beside its
baseline twin, with params, FLOPs, the task's metrics, inference speed and the
delta, every figure traced to the file it came from and the checkpoint it was
measured on.

Metrics are reported on the papers' scales: top-1 and mIoU in percent (as
mmpretrain and mmseg log them), COCO AP x 100 (mmdet logs a fraction).
"""
import os.path as osp
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from steps_mm.models import model_name_of
from . import twins
from .workdir import Run, Session

#: scope -> (task, paper dataset, [(column, metric key in the test json, scale,
#: multi-scale session?)])
TASKS = {
    'mmpretrain': ('Image Classification', 'ImageNet-1k',
                   [('top-1', 'accuracy/top1', 1, False)]),
    'mmdet': ('Instance Segmentation', 'COCO',
              [('AP^box', 'coco/bbox_mAP', 100, False),
               ('AP^mask', 'coco/segm_mAP', 100, False)]),
    'mmseg': ('Semantic Segmentation', 'ADE20K',
              [('mIoU', 'mIoU', 1, False), ('mIoU (ms)', 'mIoU', 1, True)]),
}
#: the dataset class each paper dataset is read with (and its class count)
PAPER_DATASETS = {'mmpretrain': ('ImageNet', 1000), 'mmdet': ('CocoDataset', 80),
                  'mmseg': ('ADE20KDataset', 150)}
SPEED = 'img/s'


@dataclass
class Figure:
    """One number of a table and where it came from."""
    value: float
    source: str  # the file it was read from (or counted from)
    checkpoint: Optional[str] = None  # the weights it was measured on
    note: str = ''

    def to_dict(self) -> Dict:
        return dict(value=self.value, source=self.source, checkpoint=self.checkpoint,
                    note=self.note)


@dataclass
class RunResult:
    """A run's row: its name, config and figures by column."""
    run: Run
    name: str
    layout: Optional[str]
    figures: Dict[str, Figure] = field(default_factory=OrderedDict)

    @property
    def config_file(self) -> str:
        return config_name(self.run.train or self.run.tests[-1])


@dataclass
class PairResult:
    steps: RunResult
    baseline: RunResult
    differences: List[str]  # empty when trained like for like


@dataclass
class TaskTable:
    """One paper table: a task, its dataset, its columns and its pairs (several
    pairs of the same twins and recipe are seeds of one comparison)."""
    scope: str
    task: str
    dataset: str
    columns: List[str]
    pairs: List[PairResult] = field(default_factory=list)
    unpaired: List[RunResult] = field(default_factory=list)
    #: per comparison (``seed_groups``' order), the delta's intervals, where the
    #: runs left per-image dumps (``intervals.attach``)
    intervals: List[List] = field(default_factory=list)


def config_model_name(cfg) -> str:
    """The tools' name of the config's backbone (``Steps-ConvNeXt-T`` /
    ``ConvNeXt-T``, ``DeiT-S``, ``ResNet-50``: ``StepsBackbone.model_name``);
    for another backbone or a custom arch, its type (and layout)."""
    backbone = twins.backbone_of(cfg)
    name = model_name_of(backbone)
    if name is not None:
        return name
    kind, layout = str(backbone.get('type', '?')).split('.')[-1], twins.layout(cfg)
    return f'{kind} ({layout})' if layout else kind


def config_name(session: Session) -> str:
    """The config file a session ran: the Runner dumps it into its work dir
    under the file's own name, with the same text as ``vis_data/config.py``."""
    parent = osp.dirname(session.dir)
    with open(session.config_file) as f:
        text = f.read()
    for path in sorted(p for p in (osp.join(parent, n) for n in _listdir(parent))
                       if p.endswith('.py')):
        with open(path) as f:
            if f.read() == text:
                return path
    return session.config_file


def _listdir(path):
    import os
    return os.listdir(path)


def dataset_name(cfg) -> str:
    """The paper's dataset when the run's test data is it (by dataset class and
    class count), else the dataset class and where it was read from."""
    plain = twins.plain_config(cfg)
    scope = plain.get('default_scope')
    dataset = (plain.get('test_dataloader') or {}).get('dataset', {})
    kind = str(dataset.get('type', '?')).split('.')[-1]
    classes = (dataset.get('metainfo') or {}).get('classes')
    paper_kind, paper_classes = PAPER_DATASETS.get(scope, (None, None))
    if kind == paper_kind and (classes is None or len(classes) == paper_classes):
        return TASKS[scope][1]
    return f"{kind} at {dataset.get('data_root', '?')}"


def is_paper_dataset(table: 'TaskTable') -> bool:
    return table.dataset == TASKS[table.scope][1]


# ---- figures --------------------------------------------------------------------
def test_figures(run: Run) -> Dict[str, Figure]:
    """The task's metrics (and inference speed) from the run's newest test
    sessions, single-scale and multi-scale."""
    figures = OrderedDict()
    for column, key, scale, multi_scale in TASKS[run.scope][2]:
        session = run.test(multi_scale)
        if session is None or key not in session.metrics:
            continue
        figures[column] = Figure(session.metrics[key] * scale, session.metrics_file,
                                 session.checkpoint)
    session = run.test(False) or run.tests[-1]
    metrics = session.metrics
    if 'time' in metrics:
        batch = session.config.test_dataloader.get('batch_size', 1)
        seconds = metrics['time'] - metrics.get('data_time', 0)
        figures[SPEED] = Figure(batch / seconds, session.metrics_file, session.checkpoint,
                                f'test loop, batch {batch}, data loading excluded, '
                                f'{device_of(session)}')
    return figures


def device_of(session: Session) -> str:
    """The device a session ran on, from the environment block of its log."""
    try:
        with open(session.log_file) as f:
            head = f.read(20000)
    except OSError:
        return 'device unknown'
    gpu = re.search(r'GPU [\d,]+: (.+)', head)
    return gpu.group(1).strip() if gpu else 'CPU'


class FlopCounter:
    """Params and FLOPs (``steps_mm.analysis.flops``'s protocol) of runs' configs,
    counted once per model and input size."""

    def __init__(self, shapes: Optional[Dict[str, Tuple[int, int]]] = None):
        self.shapes = dict(shapes or {})
        self._cache: Dict[tuple, Dict] = {}

    def shape(self, scope: str) -> Tuple[int, int]:
        from steps_mm.analysis.flops import DEFAULT_SHAPES
        return tuple(self.shapes.get(scope, DEFAULT_SHAPES[scope]))

    def __call__(self, run: Run) -> Dict[str, Figure]:
        from steps_mm.analysis.flops import count_config
        session = run.train or run.tests[-1]
        shape = self.shape(run.scope)
        key = (twins.model_key(session.config), twins.layout(session.config), shape)
        if key not in self._cache:
            self._cache[key] = count_config(session.config_file, shape)
        counted = self._cache[key]
        how = f'steps_mm.analysis.flops at {shape[0]}x{shape[1]}'
        return OrderedDict(params=Figure(counted['params'], session.config_file, None, how),
                           flops=Figure(counted['flops'], session.config_file, None, how))


def run_result(run: Run, flops: Optional[FlopCounter]) -> RunResult:
    result = RunResult(run, config_model_name(run.config), twins.layout(run.config))
    if flops is not None:
        result.figures.update(flops(run))
    result.figures.update(test_figures(run))
    return result


# ---- tables ---------------------------------------------------------------------
def build_tables(runs: Sequence[Run], flops: Optional[FlopCounter] = None
                 ) -> List[TaskTable]:
    """Pair the runs (see ``twins.pair``) and collect one table per task and
    dataset."""
    for run in runs:
        if run.scope not in TASKS:
            from .workdir import ResultsError
            raise ResultsError(f'{run.work_dir}: default_scope {run.scope!r} is not one '
                               f'of {sorted(TASKS)}')
    pairs, unpaired = twins.pair(list(runs), lambda r: r.config)
    tables: Dict[tuple, TaskTable] = OrderedDict()

    def table_of(run):
        scope = run.scope
        key = (scope, dataset_name(run.config))
        if key not in tables:
            columns = (['params', 'flops'] if flops else []) + \
                [c for c, *_ in TASKS[scope][2]] + [SPEED]
            tables[key] = TaskTable(scope, TASKS[scope][0], key[1], columns)
        return tables[key]

    for steps, baseline in pairs:
        table_of(steps).pairs.append(PairResult(
            run_result(steps, flops), run_result(baseline, flops),
            twins.differences(steps.config, baseline.config)))
    for run in unpaired:
        table_of(run).unpaired.append(run_result(run, flops))
    for table in tables.values():
        # keep only the columns some run has (e.g. no multi-scale mIoU)
        rows = [r for p in table.pairs for r in (p.steps, p.baseline)] + table.unpaired
        table.columns = [c for c in table.columns if any(c in r.figures for r in rows)]
    return list(tables.values())


def seed_groups(table: TaskTable) -> List[List[PairResult]]:
    """Pairs of the same twins and recipe but another seed, grouped."""
    groups: Dict[str, List[PairResult]] = OrderedDict()
    for p in table.pairs:
        cfg = dict(twins.plain_config(p.steps.run.config))
        cfg.pop('randomness', None)
        groups.setdefault(twins.twin_key(cfg), []).append(p)
    return list(groups.values())


def seed_of(result: RunResult):
    return (twins.plain_config(result.run.config).get('randomness') or {}).get('seed')
