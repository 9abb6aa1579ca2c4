"""Our models against the StepsNet paper's Table 1 (``steps_lab.paper``): the
parameters, FLOPs (multiply-accumulates), residual blocks and layers of every
named backbone (``steps_mm.models.named_backbones``) as a 1000-class classifier
at 224x224, each with the paper's value, the difference and a verdict."""
from typing import Dict, List, NamedTuple, Optional, Tuple

from steps_mm.models import StepsImageClassifier, named_backbones
from .paper import TABLE1, TABLE1_EXPLAINED, TABLE1_TOLERANCE, Table1Row
from steps_mm.analysis.counts import count_blocks_and_layers, count_params
from steps_mm.analysis.flops import count_flops

COLUMNS = ('params', 'flops', 'blocks', 'layers')
_FORMATS = dict(params='.2f', flops='.2f', blocks='d', layers='d')


class Cell(NamedTuple):
    ours: float
    paper: Optional[float]
    #: 'ok' (within tolerance), 'explained' (outside it, by a documented choice,
    #: see ``paper.TABLE1_EXPLAINED``), 'off' (outside it) or 'n/a' (no paper value)
    verdict: str


def table1_models(only: Optional[str] = None) -> List[Tuple[str, dict]]:
    """``(name, backbone config)`` of the paper's rows in its order, then the
    named models it does not have; ``only``: names containing this text."""
    named = named_backbones()
    unknown = sorted(set(TABLE1) - set(named))
    if unknown:
        raise KeyError(f'paper rows without a model of that name: {unknown}')
    names = list(TABLE1) + [n for n in named if n not in TABLE1]
    return [(n, named[n]) for n in names if not only or only in n]


def measure(backbone: dict) -> Dict[str, float]:
    """Params (M), FLOPs (G), blocks and layers of the Table-1 classifier."""
    model = StepsImageClassifier(backbone, num_classes=1000)
    blocks, layers = count_blocks_and_layers(model)
    return dict(params=count_params(model) / 1e6, flops=count_flops(model) / 1e9,
                blocks=blocks, layers=layers)


def compare(name: str, ours: Dict[str, float], paper: Optional[Table1Row] = None,
            tolerance: Optional[Dict[str, float]] = None,
            explained: Optional[Dict[str, tuple]] = None) -> Dict[str, Cell]:
    """Column -> ``Cell`` of one model (by default against ``paper.TABLE1``)."""
    paper = TABLE1.get(name) if paper is None else paper
    tolerance = dict(TABLE1_TOLERANCE, **(tolerance or {}))
    explained = TABLE1_EXPLAINED.get(name, {}) if explained is None else explained
    cells = {}
    for column in COLUMNS:
        value = None if paper is None else getattr(paper, column)
        if value is None:
            cells[column] = Cell(ours[column], None, 'n/a')
            continue
        delta = abs(ours[column] - value)
        if delta <= tolerance[column] + 1e-9:
            verdict = 'ok'
        elif column in explained and delta <= explained[column][0]:
            verdict = 'explained'
        else:
            verdict = 'off'
        cells[column] = Cell(ours[column], value, verdict)
    return cells


def within(cells: Dict[str, Cell]) -> bool:
    """No cell outside its tolerance without an explanation."""
    return all(c.verdict != 'off' for c in cells.values())


def markdown(rows: List[Tuple[str, Dict[str, Cell]]]) -> str:
    """The table of ``(name, cells)`` rows, with the explanations below it."""
    head = ['model'] + [h for c in COLUMNS for h in (_title(c), 'paper', 'Δ')] + \
        ['within tolerance']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    notes = {}  # why -> (footnote letter, models)
    for name, cells in rows:
        out = [name]
        for column in COLUMNS:
            cell, fmt = cells[column], _FORMATS[column]
            out.append(f'{cell.ours:{fmt}}')
            if cell.paper is None:
                out += ['—', '—']
                continue
            mark = ' ✗' if cell.verdict == 'off' else ''
            if cell.verdict == 'explained':
                why = TABLE1_EXPLAINED[name][column][1]
                letter, names = notes.setdefault(why, ('abcdefgh'[len(notes)], []))
                names.append(name)
                mark = f' ({letter})'
            out += [f'{cell.paper:{fmt}}', f'{cell.ours - cell.paper:+{fmt}}{mark}']
        verdicts = {c.verdict for c in cells.values()}
        out.append('✗' if 'off' in verdicts else
                   '✓ explained' if 'explained' in verdicts else '✓')
        lines.append('| ' + ' | '.join(out) + ' |')
    for why, (letter, names) in notes.items():
        lines.append(f'\n({letter}) {", ".join(names)}: outside the tolerance on '
                     f'purpose: {why}.')
    return '\n'.join(lines)


def _title(column: str) -> str:
    return dict(params='params (M)', flops='FLOPs (G)')[column] \
        if column in ('params', 'flops') else column
