"""The research tools on tiny models: shortcut ratios against hand-computed
values, path probes, and the --quick depth study end to end (CLI, JSON, plots)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from steps_mm.models import ResidualBlock, StepsStage
from steps_mm.research import models, probes, shortcut

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


class Double(ResidualBlock):
    """``x + x``: each block doubles its input, so gamma is known exactly."""
    layer_count = 1

    def residual(self, x):
        return x


def doubling_stage(spec, parallel=False):
    return StepsStage(spec, lambda width, k: Double(), parallel=parallel)


def gammas(stage, x):
    return [r['gamma'] for r in shortcut.shortcut_ratios(stage, x)]


def test_shortcut_ratio_sequential_and_parallel_by_hand():
    x = torch.randn(4, 6, 5, 5)
    # sequential: z_l = 2^l z_0; parallel: z_l = (l + 1) z_0
    assert gammas(doubling_stage([(6, 3)]), x) == pytest.approx([1 / 2, 1 / 4, 1 / 8])
    assert gammas(doubling_stage([(6, 3)], parallel=True), x) == \
        pytest.approx([1 / 2, 1 / 3, 1 / 4])


def test_shortcut_ratio_steps_uses_the_running_channels():
    x = torch.randn(4, 6, 5, 5)
    stage = doubling_stage([(2, 1), (4, 1), (6, 0)])
    # block 0 doubles x[:2]; block 1 doubles cat(2 x[:2], x[2:4])
    after_1 = 2 * torch.cat([2 * x[:, :2], x[:, 2:4]], 1)
    expected = [0.5, (x[:, :4].std() / after_1.std()).item()]
    assert gammas(stage, x) == pytest.approx(expected, rel=1e-5)
    records = shortcut.shortcut_ratios(stage, x)
    assert [(r['step'], r['width']) for r in records] == [(0, 2), (1, 4)]
    assert [r['depth'] for r in records] == [0., 1.]


@pytest.mark.parametrize('layout', ['sequential', 'steps', 'parallel'])
def test_shortcut_ratio_of_every_block_of_a_vit(layout):
    model = models.deit_like(32, 8, layout)
    records = shortcut.shortcut_ratios(model, torch.randn(2, 1, 28, 28))
    assert len(records) == 8
    assert all(r['gamma'] > 0 for r in records)
    # the parallel layout's wrappers are gone after recording
    assert not any('residual' in vars(b) for b in model.modules())


class Recorder(ResidualBlock):
    """Remembers its last input; its residual is zero."""
    layer_count = 1

    def residual(self, x):
        self.seen = x.detach().clone()
        return torch.zeros_like(x)


def test_probe_masks_channels_that_skip_every_block():
    stage = StepsStage([(4, 1), (8, 0)], lambda width, k: Recorder())
    with probes.masked_input(stage, 6, 2):
        out = stage(torch.ones(1, 8, 2, 2))
    assert out[:, 6:].abs().sum() == 0 and out[:, :6].min() == 1


def test_probe_masks_slow_and_fast_paths_of_a_stage():
    stage = StepsStage([(4, 1), (8, 1)], lambda width, k: Recorder())
    model = nn.Sequential(stage)
    x = torch.ones(1, 8, 2, 2)
    with probes.masked_input(stage, 0, 3):  # slow path
        out = model(x)
    assert stage[0].seen[:, :3].abs().sum() == 0 and stage[0].seen[:, 3:].min() == 1
    with probes.masked_input(stage, 5, 3):  # fast path: joins at step 2
        out = model(x)
    assert stage[0].seen.min() == 1  # step 1 sees channels 0..3 only
    assert stage[1].seen[:, 5:].abs().sum() == 0 and stage[1].seen[:, :5].min() == 1
    assert out[:, 5:].abs().sum() == 0 and out[:, :5].min() == 1
    assert torch.equal(model(x), x)  # the hooks are gone


def test_probe_reaches_the_vit_segments_and_skips_blocks():
    model = models.deit_like(32, 8, 'steps').eval()
    stage = probes.pick_stage(model)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        plain = model(x)
        with probes.masked_input(stage, 0, 4):
            masked = model(x)
        with probes.skipped_blocks(list(stage)):
            skipped = model(x)
    assert not torch.allclose(plain, masked)
    assert not torch.allclose(plain, skipped)
    # spec [(16, 4), (24, 2), (32, 2)]: one block of width 32 costs 4 of width 16
    assert [probes.blocks_for_compute(stage, i, 1.) for i in range(3)] == [4, 2, 1]
    assert probes.mask_counts(stage) == [3, 5, 8, 11, 13]


def test_probe_paths_cli_trains_saves_and_reloads(tmp_path):
    ckpt = tmp_path / 'model.pth'
    run = [sys.executable, osp.join(ROOT, 'tools', 'probe_paths.py')]
    out = subprocess.run(run + ['--width', '32', '--blocks', '4', '--epochs', '0.1',
                                '--save', str(ckpt), '--out', str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert 'first n (slow path)' in out and '| F3 |' in out
    result = json.loads((tmp_path / 'probe_paths.json').read_text())
    assert len(result['slow']) == len(result['fast']) == 5
    reloaded = subprocess.run(run + ['--checkpoint', str(ckpt)], capture_output=True,
                              text=True, check=True).stdout
    assert reloaded == out  # same weights, same probes


def test_shortcut_ratio_cli_writes_table_json_and_plot(tmp_path):
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'shortcut_ratio.py'), '--blocks', '4',
         '--width', '32', '--train-steps', '2', '--batch', '8', '--out', str(tmp_path)],
        capture_output=True, text=True, check=True).stdout
    for layout in ('sequential', 'steps', 'parallel'):
        assert f'| {layout} | 4 | init |' in out and f'| {layout} | 4 | 2 steps |' in out
    runs = json.loads((tmp_path / 'shortcut_ratio.json').read_text())
    assert len(runs) == 3 and all(len(r['trained']) == 4 for r in runs)
    assert (tmp_path / 'shortcut_ratio.png').stat().st_size > 10_000


def test_depth_study_quick(tmp_path):
    """The --quick grid end to end: both tables, the JSON and both plots."""
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'depth_study.py'), '--quick',
         '--out', str(tmp_path)], capture_output=True, text=True, check=True,
        timeout=180).stdout
    assert 'Table 2 form' in out and 'Fig. 1 form' in out
    result = json.loads((tmp_path / 'depth_study.json').read_text())
    shallow = result['shallow']['runs']
    assert len(shallow) == 2 * 2 * 2 * 2  # layers x filters x kernels x layouts
    for seq, par in zip(shallow[::2], shallow[1::2]):
        assert seq['params'] == par['params']  # same layers, same parameters
        if seq['layers'] == 1:  # one branch: parallel is sequential exactly
            assert seq['val_loss'] == pytest.approx(par['val_loss'], rel=1e-4)
    depth = result['depth']['cells']
    steps = [c for c in depth if c['layout'] == 'steps']
    seq = [c for c in depth if c['layout'] == 'sequential']
    for s, q in zip(steps, seq):
        assert s['blocks'] == 2 * q['blocks']
        assert abs(s['macs'] / q['macs'] - 1) < 0.1  # about the same compute
    assert all(0 <= c['val_acc'] <= 1 for c in depth)
    for name in ('shallow_losses.png', 'depth_accuracy.png'):
        assert (tmp_path / name).stat().st_size > 10_000
