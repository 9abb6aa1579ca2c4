"""steps_lab.fidelity against steps_lab.paper: the verdicts of the
comparison, the paper's rows naming our models, and two real rows. The whole
table runs as `python tools/fidelity_table.py` in test_tool_commands."""
from steps_lab import fidelity
from steps_lab.paper import TABLE1, TABLE1_EXPLAINED


def verdicts(cells):
    return {column: cell.verdict for column, cell in cells.items()}


def paper_counts(name, **changes):
    return dict(TABLE1[name]._asdict(), **changes)


def test_verdicts_ok_off_explained_and_no_paper_value():
    swin_t = TABLE1['Steps-Swin-T']
    ok = fidelity.compare('Steps-Swin-T', paper_counts('Steps-Swin-T',
                                                       params=swin_t.params + 0.09))
    assert set(verdicts(ok).values()) == {'ok'} and fidelity.within(ok)
    # 0.5M over the paper: explained for Steps-Swin-T, off for Swin-T
    assert 'params' in TABLE1_EXPLAINED['Steps-Swin-T']
    explained = fidelity.compare('Steps-Swin-T', paper_counts(
        'Steps-Swin-T', params=swin_t.params + 0.5))
    assert verdicts(explained)['params'] == 'explained' and fidelity.within(explained)
    off = fidelity.compare('Swin-T', paper_counts('Swin-T', params=28.8))
    assert verdicts(off)['params'] == 'off' and not fidelity.within(off)
    # beyond the explained difference, and a block count off by one
    beyond = fidelity.compare('Steps-Swin-T', paper_counts(
        'Steps-Swin-T', params=swin_t.params + 1.5, blocks=swin_t.blocks + 1))
    assert verdicts(beyond) == dict(params='off', flops='ok', blocks='off', layers='ok')
    table = fidelity.markdown([('Steps-Swin-T', explained), ('Swin-T', off)])
    assert '+0.50 (a)' in table and '✓ explained |' in table
    assert '+0.50 ✗' in table and table.count('\n(a) Steps-Swin-T:') == 1
    convnext = fidelity.compare('ConvNeXt-T', dict(params=28.6, flops=4.5, blocks=18,
                                                   layers=59))
    assert set(verdicts(convnext).values()) == {'n/a'} and fidelity.within(convnext)


def test_every_paper_row_is_one_of_our_models_and_comes_first():
    names = [name for name, _ in fidelity.table1_models()]
    assert names[:len(TABLE1)] == list(TABLE1)
    assert sorted(names[len(TABLE1):]) == sorted(
        f'{p}ConvNeXt-{a}' for p in ('', 'Steps-') for a in 'TSB')
    assert [n for n, _ in fidelity.table1_models('DeiT-T')] == ['DeiT-T', 'Steps-DeiT-T']


def test_resnet18_rows_match_the_paper():
    for name, backbone in fidelity.table1_models('ResNet-18'):
        cells = fidelity.compare(name, fidelity.measure(backbone))
        assert set(verdicts(cells).values()) == {'ok'}, (name, cells)
