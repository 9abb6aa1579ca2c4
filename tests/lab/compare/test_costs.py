"""The wall-time estimate of a comparison (``steps_lab.compare.costs``): the
measured per-stage costs added up per twin, the slower twin per seed, the seeds
added, reused stages free, unmeasured ones named; progress per stage; and the
costs read from a finished stage's logs."""
import os

import pytest

from steps_lab.compare import costs
from steps_lab.compare.costs import COSTS, Estimate, Progress, StageCost, estimate, measure
from steps_lab.demo.chain import PAIRS, ChainRecipe, ChainStage

RECIPE = ChainRecipe(pretrain_epochs=10, det_iters=100, seg_iters=50)
TABLE = {
    ('p', 'pretrain'): (StageCost(unit=5, fixed=10, test=20), StageCost(unit=4, fixed=10, test=20)),
    ('p', 'mask-rcnn'): (StageCost(unit=2, fixed=30, test=100), StageCost(unit=3, fixed=30, test=100)),
    ('p', 'cascade'): (StageCost(unit=6, fixed=40, test=200), StageCost(unit=5, fixed=40, test=200)),
}


def stages(*actions, head=None, fine='det'):
    """A chain's plan: the pretraining's action, then the fine-tuning's."""
    return [ChainStage('pretrain', 'pretrain', None, 'x', actions[0]),
            ChainStage(fine, fine, head, 'y', actions[1])]


def test_the_estimate_by_hand():
    plans = {0: [stages('train', 'train'), stages('train', 'train')],
             1: [stages('reuse', 'train'), stages('reuse', 'test')]}
    # seed 0, Steps: pretraining 10 + 10 * 5 + 20 = 80, det 30 + 100 * 2 + 100 = 330: 410
    #         twin:  10 + 10 * 4 + 20 = 70,  30 + 100 * 3 + 100 = 430: 500 -> 500
    # seed 1, Steps: det 330; twin: its test only, 100 -> 330
    assert estimate('p', plans, RECIPE, costs=TABLE) == Estimate(830, [])
    # one after the other: 410 + 500 + 330 + 100
    assert estimate('p', plans, RECIPE, parallel=False, costs=TABLE).seconds == 1340
    head = {0: [stages('reuse', 'train', head='cascade')] * 2}
    # 40 + 100 * 6 + 200 = 840 and 40 + 100 * 5 + 200 = 740
    assert estimate('p', head, RECIPE, costs=TABLE).seconds == 840
    assert str(Estimate(840, [])) == 'about 14 min'
    # a stage under way costs what is left of it: the twin's pretraining 30 s in
    # (70 - 30 + 430 = 470 > 410), and past its estimate it costs nothing more
    assert estimate('p', plans, RECIPE, costs=TABLE,
                    running={(0, 1, 'pretrain'): 30}).seconds == 470 + 330
    assert estimate('p', plans, RECIPE, costs=TABLE,
                    running={(0, 1, 'pretrain'): 99, (0, 0, 'pretrain'): 99}).seconds == 430 + 330


def test_an_unmeasured_stage_is_named_not_guessed():
    plans = {0: [stages('train', 'train', head='dino')] * 2}
    found = estimate('p', plans, RECIPE, costs=TABLE)
    assert found == Estimate(80, ['p dino'])  # the pretraining's 80 s only
    assert str(found) == ('at least 80 s (no measured costs for p dino in '
                          'steps_lab/compare/costs.py)')
    reused = {0: [stages('reuse', 'train', head='dino')] * 2}
    assert str(estimate('p', reused, RECIPE, costs=TABLE)) == (
        'unknown (no measured costs for p dino in steps_lab/compare/costs.py)')
    # a reused stage needs no measurement
    assert estimate('p', {0: [stages('reuse', 'reuse', head='dino')] * 2}, RECIPE,
                    costs=TABLE) == Estimate(0, [])


def test_progress_per_stage_with_the_time_left(monkeypatch):
    monkeypatch.setattr(costs, 'COSTS', TABLE)
    now, lines = [1000.0], []
    plans = {0: [stages('train', 'train'), stages('train', 'train')]}
    progress = Progress('p', plans, RECIPE, PAIRS['convnext-t'], echo=lines.append,
                        clock=lambda: now[0])
    steps, twin = progress.for_side(0, 0), progress.for_side(0, 1)
    steps(plans[0][0][0], 'start')
    twin(plans[0][1][0], 'start')
    now[0] += 80
    steps(plans[0][0][0], 'done')
    steps(plans[0][0][1], 'start')
    assert lines == [
        '[demo] stage 1 of 4: Steps-ConvNeXt-T seed 0 pretrain (train and test); 0 s '
        'elapsed, about 8 min left',  # 500 s: the twin's 70 + 430
        '[demo] stage 2 of 4: ConvNeXt-T seed 0 pretrain (train and test); 0 s elapsed, '
        'about 8 min left',
        '[demo] stage 3 of 4: Steps-ConvNeXt-T seed 0 det (train and test); 80 s elapsed, '
        'about 7 min left']  # the twin's pretraining has run past its 70 s: its det's 430


def test_the_table_has_both_twins_of_known_pairs_and_stages():
    from steps_lab.demo.chain import DEFAULT_HEADS, HEADS
    for (pair, stage), sides in COSTS.items():
        assert pair in PAIRS and stage in ('pretrain', *DEFAULT_HEADS.values(), *HEADS)
        assert len(sides) == 2 and all(s.unit > 0 and s.test > 0 for s in sides)


def test_costs_are_read_from_a_stages_logs(tmp_path):
    lines = ['12/06 21:26:13 - mmengine - INFO - Iter(train) [ 10/540]  lr: 1e-4  time: 2.4',
             'noise',
             '12/06 21:53:27 - mmengine - INFO - Iter(train) [540/540]  lr: 1e-5  time: 6.9']
    (tmp_path / 'train.log').write_text('\n'.join(lines) + '\n')
    (tmp_path / 'stage.json').write_text('{"train_seconds": 1700.0, "test_seconds": 230.0}')
    found = measure(str(tmp_path))
    unit = (27 * 60 + 14) / 530
    assert found == dict(units=540, unit=round(unit, 2), fixed=round(1700 - 540 * unit, 1),
                         test=230.0)
    epochs = ['12/06 23:59:50 - mmengine - INFO - Epoch(train)  [1][10/12]  lr: 1e-4',
              '12/07 00:01:30 - mmengine - INFO - Epoch(train) [11][10/12]  lr: 1e-4']
    (tmp_path / 'train.log').write_text('\n'.join(epochs) + '\n')
    assert measure(str(tmp_path))['unit'] == 10.0  # 100 s for 10 epochs, past midnight
    os.remove(tmp_path / 'stage.json')
    with pytest.raises(ValueError, match='no training and test times'):
        measure(str(tmp_path))


def test_progress_names_the_head_and_what_it_cannot_estimate(monkeypatch):
    monkeypatch.setattr(costs, 'COSTS', TABLE)
    lines = []
    plans = {0: [stages('reuse', 'test', head='dino')] * 2}
    progress = Progress('p', plans, RECIPE, PAIRS['swin-t'], echo=lines.append,
                        clock=lambda: 0.0)
    progress.for_side(0, 0)(plans[0][0][0], 'start')  # reused: not a stage to count
    progress.for_side(0, 1)(plans[0][1][1], 'start')
    assert lines == ['[demo] stage 1 of 2: Swin-T seed 0 det (dino) (test only); 0 s '
                     'elapsed, time left unknown (p dino)']
