"""steps_lab.benchmark (behind tools/benchmark.py): real (tiny) runs of both modes,
the breakdown by op category, the peers' settings and the default groups. No
timing is asserted;
the tool's own outputs (Markdown, JSON, plot) are checked in test_tool_commands."""
from types import SimpleNamespace

import pytest
import torch

from steps_lab import benchmark
from steps_mm.analysis import timing

from conftest import ROOT


@pytest.fixture(autouse=True, scope='module')
def one_thread():  # tiny steps: more threads only add contention on a shared machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def settings(**kw):
    """tools/benchmark.py's options, at a tiny size."""
    return SimpleNamespace(**dict(
        dict(mode='backbone', batch=1, device='cpu', size=32, precision=['fp32'],
             train=True, repeats=2, warmup=0, iters=1, memory=True, breakdown=False,
             count_ops=False, profile=0, root=ROOT), **kw))


def test_backbone_group_ratios_memory_breakdown_and_op_counts():
    rows = benchmark.run_group(['DeiT-T', 'Steps-DeiT-T'], 'DeiT-T',
                               settings(breakdown=True, count_ops=True), print)
    base, steps = rows
    assert base['infer_ratio'] == base['train_ratio'] == 1.
    assert steps['baseline'] == 'DeiT-T'
    assert steps['infer_ratio'] == pytest.approx(steps['infer_img_s'] /
                                                 base['infer_img_s'])
    for key in ('infer', 'train'):
        assert steps[f'{key}_img_s'] > 0 and steps[f'{key}_peak_mib'] > 0
        ms = steps[f'{key}_breakdown']
        assert set(ms) == set(timing.CATEGORIES)
        assert ms['matmul & conv'] > 0 and ms['attention'] > 0
    # twice the blocks dispatch about twice the ops; backward adds more
    assert 1.8 < steps['infer_ops'] / base['infer_ops'] < 2.2
    assert steps['train_ops'] > 2 * steps['infer_ops']
    table = benchmark.breakdown_table(rows, 'train')
    assert table.startswith('train, fp32, ms per step by op category')
    assert '| attention | ' in table and 'x)' in table


@pytest.mark.slow
def test_config_mode_runs_a_whole_detector_step():
    (row,) = benchmark.run_group(['MaskRCNN-Steps-R50'], 'MaskRCNN-Steps-R50',
                                 settings(mode='config', batch=2, size=64, memory=False,
                                          repeats=1), print)
    assert row['model'] == 'MaskRCNN-Steps-R50' and row['train_img_s'] > 0


def test_config_mode_size_is_the_image_size():
    """mmseg's preprocessor pads to its crop size (512x512); --size replaces it."""
    bench = benchmark.build('UperNet-DeiT-S', 'config', 2, 'cpu', 64, ROOT)
    assert bench.model.data_preprocessor.size == (64, 64)


def test_peers_do_the_same_training_work_as_ours():
    """mmdet's defaults would make its peers cheaper (BN frozen in eval mode)
    or dearer (drop path 0.1) than ours; the benchmark sets them equal."""
    resnet = benchmark.build('mmdet-ResNet-50', 'backbone', 1, 'cpu', 32).model
    resnet.train()  # mmdet's ResNet.train returns None
    norms = [m for m in resnet.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.training for m in norms)
    swin = benchmark.build('mmdet-Swin-T', 'backbone', 1, 'cpu', 32).model
    rates = [m.drop_prob for m in swin.modules() if hasattr(m, 'drop_prob')]
    assert rates and not any(rates)


def test_default_groups_come_from_the_families():
    groups = benchmark.default_groups('backbone')
    assert groups == [['ConvNeXt-T', 'Steps-ConvNeXt-T'],
                      ['Swin-T', 'Steps-Swin-T', 'mmdet-Swin-T'],
                      ['ResNet-50', 'Steps-ResNet-50', 'mmdet-ResNet-50'],
                      ['DeiT-S', 'Steps-DeiT-S', 'mmseg-ViT-S']]
    models = benchmark.backbone_models()
    assert models['Steps-ResNet-34'] == dict(type='StepsResNet', depth=34,
                                             layout='steps')
    assert models['Swin-B']['layout'] == 'sequential'


def test_bad_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match='unknown backbone model .*Steps-Swin-T'):
        benchmark.check_name('Steps-Swim-T', 'backbone')
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['fast'\].*explicit"):
        benchmark.check_name('Swin-T+fast', 'backbone')
