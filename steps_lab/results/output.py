"""The tables as Markdown (for people), CSV (one figure per line, with its source
and checkpoint) and JSON (the whole structure), and the warnings beside them."""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional

from ..report import markdown_table, mean_std
from .tables import SPEED, PairResult, RunResult, TaskTable, seed_groups, seed_of

HEADERS = {'params': 'params (M)', 'flops': 'GMACs'}


def _scaled(column: str, value: float) -> float:
    return value / 1e6 if column == 'params' else value / 1e9 if column == 'flops' \
        else value


def _cell(column: str, values: List[float], signed: bool = False) -> str:
    if not values:
        return '—'
    values = [_scaled(column, v) for v in values]
    # GMACs: 3 decimals at the demo's sizes, 1 at the paper's
    digits = (3 if max(abs(v) for v in values) < 10 else 1) if column == 'flops' else 1
    mean, std = mean_std(values)
    text = f'{mean:+.{digits}f}' if signed else f'{mean:.{digits}f}'
    return text + (f' ± {std:.{digits}f}' if len(values) > 1 else '')


def _interval_cell(interval) -> str:
    return (f'[{interval.low:+.1f}, {interval.high:+.1f}] {interval.verdict} '
            f'({interval.seeds} seed{"s" if interval.seeds > 1 else ""}, '
            f'{interval.images} images; detects ±{interval.detectable:.1f} '
            f'{interval.power:.0%} of the time)')


def _values(results: List[RunResult], column: str) -> List[float]:
    return [r.figures[column].value for r in results if column in r.figures]


def deltas(pair: PairResult) -> Dict[str, float]:
    """Steps minus baseline, per column both rows have."""
    return {c: pair.steps.figures[c].value - pair.baseline.figures[c].value
            for c in pair.steps.figures if c in pair.baseline.figures}


def header(table: TaskTable, flops_shape: Optional[tuple] = None) -> List[str]:
    names = []
    for column in table.columns:
        name = HEADERS.get(column, column)
        if column == 'flops' and flops_shape:
            name += f' @{flops_shape[0]}x{flops_shape[1]}'
        names.append(name)
    return ['model', 'config'] + names


def markdown(tables: List[TaskTable], flops_shapes: Optional[Dict] = None) -> str:
    """One Markdown table per task and dataset: per comparison (a pair, or the
    seeds of one), the Steps row, the baseline row and the delta row, then the
    warnings and the runs' sources."""
    out = []
    for table in tables:
        shape = (flops_shapes or {}).get(table.scope)
        rows = []
        for index, group in enumerate(seed_groups(table)):
            n = len(group)
            seeds = f' ({n} seeds)' if n > 1 else ''
            for side in ('steps', 'baseline'):
                results = [getattr(p, side) for p in group]
                first = results[0]
                rows.append([first.name + seeds, f'`{osp.basename(first.config_file)}`']
                            + [_cell(c, _values(results, c)) for c in table.columns])
            diffs = [deltas(p) for p in group]
            rows.append(['delta (Steps − baseline)', '']
                        + [_cell(c, [d[c] for d in diffs if c in d], signed=True)
                           for c in table.columns])
            found = {i.column: i for i in
                     (table.intervals[index] if index < len(table.intervals) else [])}
            if found:
                level = next(iter(found.values())).level
                rows.append([f'{level:.0%} interval of the delta, verdict', '']
                            + [_interval_cell(found[c]) if c in found else ''
                               for c in table.columns])
        for result in table.unpaired:
            rows.append([result.name + ' (no twin given)',
                         f'`{osp.basename(result.config_file)}`']
                        + [_cell(c, _values([result], c)) for c in table.columns])
        out.append(f'### {table.task}, {table.dataset}\n')
        out.append(markdown_table(header(table, shape), rows))
        notes = warnings(table)
        if notes:
            out.append('\n' + '\n'.join(f'- **warning**: {w}' for w in notes))
        out.append('\nSources (the test result and the checkpoint it measured):\n')
        for result in _results(table):
            test = result.figures.get(SPEED) or next(
                (f for c, f in result.figures.items() if c not in HEADERS), None)
            out.append(f'- {result.name}, seed {seed_of(result)}: `{result.run.work_dir}`'
                       + (f': `{test.source}` on `{test.checkpoint}`' if test else ''))
        out.append('')
    return '\n'.join(out)


def _results(table: TaskTable) -> List[RunResult]:
    return [r for p in table.pairs for r in (p.steps, p.baseline)] + table.unpaired


def warnings(table: TaskTable) -> List[str]:
    """Pairs not trained like for like, and runs without a twin."""
    notes = []
    for p in table.pairs:
        if p.differences:
            notes.append(f'{p.steps.name} (`{p.steps.run.work_dir}`) and {p.baseline.name} '
                         f'(`{p.baseline.run.work_dir}`) were not trained like for like: '
                         f'they differ in {", ".join(p.differences)}')
    for r in table.unpaired:
        notes.append(f'{r.name} (`{r.run.work_dir}`) has no twin among the given work '
                     f'dirs (its twin: the same config with the other backbone layout)')
    return notes


def figure_rows(tables: List[TaskTable]) -> List[Dict]:
    """One row per figure: the CSV's lines."""
    rows = []
    for table in tables:
        for index, p in enumerate(table.pairs):
            for role, result in (('steps', p.steps), ('baseline', p.baseline)):
                rows += _run_rows(table, index, role, result)
            for column, value in deltas(p).items():
                rows.append(dict(task=table.task, dataset=table.dataset, pair=index,
                                 role='delta', model=f'{p.steps.name} − {p.baseline.name}',
                                 seed=seed_of(p.steps), column=column, value=value,
                                 source=f'{p.steps.figures[column].source} − '
                                        f'{p.baseline.figures[column].source}',
                                 checkpoint='', note='', config='', work_dir=''))
        for result in table.unpaired:
            rows += _run_rows(table, '', 'unpaired', result)
    return rows


def _run_rows(table, index, role, result: RunResult) -> List[Dict]:
    return [dict(task=table.task, dataset=table.dataset, pair=index, role=role,
                 model=result.name, seed=seed_of(result), column=column,
                 value=figure.value, source=figure.source,
                 checkpoint=figure.checkpoint or '', note=figure.note,
                 config=result.config_file, work_dir=result.run.work_dir)
            for column, figure in result.figures.items()]


def to_json(tables: List[TaskTable]) -> List[Dict]:
    def run(result: RunResult):
        return dict(model=result.name, layout=result.layout, config=result.config_file,
                    work_dir=result.run.work_dir, seed=seed_of(result),
                    figures={c: f.to_dict() for c, f in result.figures.items()})
    return [dict(task=t.task, dataset=t.dataset, scope=t.scope, columns=t.columns,
                 pairs=[dict(steps=run(p.steps), baseline=run(p.baseline),
                             delta=deltas(p), like_for_like=not p.differences,
                             differences=p.differences) for p in t.pairs],
                 unpaired=[run(r) for r in t.unpaired], warnings=warnings(t),
                 intervals=[[i.to_dict() for i in group] for group in t.intervals])
            for t in tables]


def write(tables: List[TaskTable], out_dir: str,
          flops_shapes: Optional[Dict] = None) -> Dict[str, str]:
    """``results.md``, ``results.csv`` and ``results.json`` in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'results.{ext}') for ext in ('md', 'csv', 'json')}
    with open(paths['md'], 'w') as f:
        f.write(markdown(tables, flops_shapes))
    rows = figure_rows(tables)
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ['task'])
        writer.writeheader()
        writer.writerows(rows)
    with open(paths['json'], 'w') as f:
        json.dump(to_json(tables), f, indent=1)
    return paths
