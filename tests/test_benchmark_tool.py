"""tools/benchmark.py: real (tiny) runs of both modes, its outputs, the op
categories of ``--breakdown`` and the peers' settings. No timing is asserted."""
import json
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools'))
import benchmark  # noqa: E402

FAST = ['--threads', '1', '--batch', '1', '--repeats', '2', '--warmup', '0']


def test_backbone_mode_writes_ratios_breakdown_table_json_and_plot(tmp_path, capsys):
    out = str(tmp_path / 'bench')
    benchmark.main(FAST + ['--models', 'DeiT-S,Steps-DeiT-S;Swin-T+explicit',
                           '--size', '32', '--breakdown', '--count-ops', '--out', out])
    result = json.load(open(out + '.json'))
    rows = {r['model']: r for r in result['rows']}
    assert list(rows) == ['DeiT-S', 'Steps-DeiT-S', 'Swin-T+explicit']
    assert rows['DeiT-S']['infer_ratio'] == rows['DeiT-S']['train_ratio'] == 1.
    assert rows['Swin-T+explicit']['baseline'] == 'Swin-T+explicit'  # its own group
    steps = rows['Steps-DeiT-S']
    assert steps['baseline'] == 'DeiT-S'
    assert steps['infer_ratio'] == pytest.approx(
        steps['infer_img_s'] / rows['DeiT-S']['infer_img_s'])
    for key in ('infer', 'train'):
        assert steps[f'{key}_img_s'] > 0 and steps[f'{key}_peak_mib'] > 0
        ms = steps[f'{key}_breakdown']
        assert set(ms) == set(benchmark.CATEGORIES)
        assert ms['matmul & conv'] > 0 and ms['attention'] > 0
    # twice the blocks dispatch about twice the ops; backward adds more
    base = rows['DeiT-S']
    assert 1.8 < steps['infer_ops'] / base['infer_ops'] < 2.2
    assert steps['train_ops'] > 2 * steps['infer_ops']
    # training does more matmul work than inference
    assert steps['train_breakdown']['matmul & conv'] > steps['infer_breakdown']['matmul & conv']
    assert '32x32' in result['setup'] and 'batch 1' in result['setup']
    printed = capsys.readouterr().out
    table = open(out + '.md').read()
    assert '| Steps-DeiT-S | DeiT-S | fp32 |' in table and 'train ops |' in table
    # one breakdown table per group and mode, printed and written
    assert table.count('ms per step by op category') == 4
    assert 'train, fp32, ms per step by op category' in printed
    assert '| attention | ' in table
    assert osp.getsize(out + '.png') > 1000


def test_config_mode_runs_a_whole_detector_step(tmp_path):
    out = str(tmp_path / 'cfg')
    benchmark.main(FAST + ['--mode', 'config', '--models', 'MaskRCNN-Steps-R50',
                           '--batch', '2', '--size', '64', '--no-memory', '--out', out])
    row = json.load(open(out + '.json'))['rows'][0]
    assert row['model'] == 'MaskRCNN-Steps-R50' and row['train_img_s'] > 0


@pytest.mark.parametrize('op, category', [
    ('aten::mm', 'matmul & conv'), ('aten::convolution_backward', 'matmul & conv'),
    ('aten::_scaled_dot_product_flash_attention_for_cpu', 'attention'),
    ('aten::_softmax_backward_data', 'attention'), ('aten::cat', 'copies & layout'),
    ('aten::copy_', 'copies & layout'), ('aten::native_layer_norm_backward', 'norms'),
    ('aten::native_batch_norm', 'norms'), ('aten::gelu', 'activations & elementwise'),
    ('aten::add_', 'activations & elementwise')])
def test_op_categories(op, category):
    assert benchmark.op_category(op) == category


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


def test_bad_names_are_refused_with_the_choices():
    with pytest.raises(SystemExit, match='unknown backbone model .*Steps-Swin-T'):
        benchmark.build('Steps-Swim-T', 'backbone', 1, 'cpu')
    with pytest.raises(SystemExit, match=r"unknown option\(s\) \['fast'\].*explicit"):
        benchmark.build('Swin-T+fast', 'backbone', 1, 'cpu')
