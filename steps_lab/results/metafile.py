"""Measured results into the model index (``steps_mm.analysis.model_index``), in
mim's format::

    Results:
    - Task: Instance Segmentation
      Dataset: COCO
      Metrics: {box AP: 46.3, mask AP: 41.7}
      Source: .../20240101_120000/20240101_120000.json   # the test result
      Checkpoint: work_dirs/steps_convnext_maskrcnn/epoch_36.pth

so that ``mim search steps_mm --field box_ap`` shows them (mim reads Task, Dataset
and Metrics and ignores the rest). Metric names are the ones OpenMMLab's own
metafiles use. The package's index takes results on the paper's datasets only (a
number on the built-in demo data is no COCO result); another metafile (``path``)
takes any.
"""
import os.path as osp
from typing import Dict, List, Optional

from steps_mm.analysis import model_index as index
from .tables import TASKS, RunResult, TaskTable, is_paper_dataset
from .workdir import ResultsError

#: our table columns -> the metric names of OpenMMLab's metafiles
METRIC_NAMES = {'top-1': 'Top 1 Accuracy', 'AP^box': 'box AP', 'AP^mask': 'mask AP',
                'mIoU': 'mIoU', 'mIoU (ms)': 'mIoU(ms+flip)'}


def entry_results(table: TaskTable, result: RunResult) -> Dict:
    """One ``Results`` item of a run: its metrics, the test result they came
    from and the checkpoint they were measured on."""
    metrics = {METRIC_NAMES[c]: round(f.value, 2) for c, f in result.figures.items()
               if c in METRIC_NAMES}
    tests = [f for c, f in result.figures.items() if c in METRIC_NAMES]
    sources = sorted({f.source for f in tests})
    checkpoints = sorted({f.checkpoint for f in tests if f.checkpoint})
    return {'Task': table.task, 'Dataset': table.dataset, 'Metrics': metrics,
            'Source': sources[0] if len(sources) == 1 else sources,
            'Checkpoint': checkpoints[0] if len(checkpoints) == 1 else checkpoints}


def entry_of_run(result: RunResult, names: List[str]) -> Optional[str]:
    """The index entry of a run's config: the entry whose name ends with the
    config file's name (``imagenet/steps-convnext-tiny_32xb128_in1k``)."""
    stem = osp.splitext(osp.basename(result.config_file))[0]
    found = [n for n in names if n == stem or n.endswith('/' + stem)]
    return found[0] if len(found) == 1 else None


def write_results(tables: List[TaskTable], path: str = index.METAFILE) -> List[str]:
    """Put every run's measured metrics into the metafile at ``path`` (the
    package's by default), replacing that entry's result on the same task and
    dataset. Returns the names of the entries written. Raises ``ResultsError``
    (and writes nothing) for results the package index cannot take: not on a
    paper dataset, or from a config that is not a shipped one."""
    entries = index.read_entries(path)
    if not entries:
        raise ResultsError(f'{path}: no model index here (python tools/flops.py '
                           f'--write-metafile writes the package\'s)')
    package = osp.abspath(path) == osp.abspath(index.METAFILE)
    updates, problems = {}, []
    for table in tables:
        if package and not is_paper_dataset(table):
            problems.append(
                f'{table.task} results on {table.dataset}: the package index takes '
                f'results on {TASKS[table.scope][1]} only; give another metafile path')
            continue
        for result in [r for p in table.pairs for r in (p.steps, p.baseline)] + \
                table.unpaired:
            name = entry_of_run(result, list(entries))
            if name is None:
                problems.append(f'{result.run.work_dir}: its config '
                                f'{osp.basename(result.config_file)} names no entry of '
                                f'{path}')
                continue
            item = entry_results(table, result)
            if item['Metrics']:
                updates.setdefault(name, []).append(item)
    if problems:
        raise ResultsError('nothing written to the model index:\n' + '\n'.join(problems))
    for name, items in updates.items():
        index.put_results(entries, name, items)
    index.write(list(entries.values()), path)
    return sorted(updates)


def unmeasured(entries: Dict[str, Dict]) -> List[str]:
    """Problems with the results of an index: metrics without a Source and a
    Checkpoint, or on a dataset that is not the task's paper dataset (what the
    package's committed index must never carry)."""
    paper = {task: dataset for task, dataset, _ in TASKS.values()}
    problems = []
    for name, entry in entries.items():
        for result in entry.get('Results') or []:
            if not result.get('Metrics'):
                continue
            if paper.get(result['Task']) != result['Dataset']:
                problems.append(f"{name}: {result['Task']} results on {result['Dataset']}")
            if not result.get('Source') or not result.get('Checkpoint'):
                problems.append(f'{name}: metrics without a Source and a Checkpoint')
            unknown = set(result['Metrics']) - set(METRIC_NAMES.values())
            if unknown:
                problems.append(f'{name}: unknown metrics {sorted(unknown)}')
    return problems


__all__ = ['METRIC_NAMES', 'entry_results', 'unmeasured', 'write_results']
