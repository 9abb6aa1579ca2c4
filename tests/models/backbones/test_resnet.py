"""StepsResNet: shapes, gradients, BatchNorm options and parameter counts."""
import re

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from steps_mm.analysis import count_blocks_and_layers
from steps_mm.models import StepsImageClassifier, StepsResNet
from steps_mm.models.blocks import BasicBlock, Bottleneck, ResNetBlock

from backbone_checks import (assert_checkpointing_changes_nothing,
                             assert_every_parameter_gets_a_gradient,
                             assert_outputs_close)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def blocks_in_order(model):
    return [b for first, stage in zip(model.first_blocks, model.stages)
            for b in (first, *stage)]


WIDTHS = {18: [64, 128, 256, 512], 34: [64, 128, 256, 512],
          50: [256, 512, 1024, 2048]}


@pytest.mark.parametrize('depth', [18, 34, 50])
@pytest.mark.parametrize('layout', ['steps', 'sequential'])
def test_forward_shapes(depth, layout):
    model = StepsResNet(depth, layout=layout).eval()
    with torch.no_grad():
        for h, w in ((224, 224), (65, 97)):
            outs = model(torch.randn(1, 3, h, w))
            assert [o.shape[1] for o in outs] == WIDTHS[depth]
            expected = [((h + 1) // 2 + 1) // 2, ((w + 1) // 2 + 1) // 2]
            sizes = [tuple(expected)]
            for _ in range(3):
                sizes.append(tuple((s + 1) // 2 for s in sizes[-1]))
            assert [tuple(o.shape[2:]) for o in outs] == sizes
    assert model.out_channels == WIDTHS[depth]
    assert model.out_strides == [4, 8, 16, 32]


def test_steps_layout_and_names():
    model = StepsResNet(50)
    assert [len(s) for s in model.stages] == [2, 3, 17, 8]  # + 4 first blocks = 34
    assert model.stages[2].spec == [(256, 6), (360, 3), (512, 3), (724, 3), (1024, 2)]
    assert model.stages[3].spec[-1] == (2048, 1)
    assert model.stages[2][0].conv1.in_channels == 256
    assert model.stages[2][0].conv2.in_channels == 64  # bottleneck width
    assert model.stages[2][16].conv3.out_channels == 1024
    assert all(isinstance(b, Bottleneck) for b in blocks_in_order(model))
    r18 = StepsResNet(18)
    assert [len(s) for s in r18.stages] == [1, 1, 5, 7]
    assert r18.stages[2].spec[-1] == (256, 0)  # the last step passes channels on
    assert [b.conv1.in_channels for b in r18.stages[3]] == \
        [64, 64, 90, 128, 181, 256, 362]
    names = set(dict(model.named_parameters()))
    assert {'conv1.weight', 'bn1.weight', 'first_blocks.0.conv1.weight',
            'first_blocks.0.downsample.0.weight', 'first_blocks.3.downsample.1.bias',
            'stages.2.16.bn3.weight'} <= names
    assert not any(n.startswith('stages.') and 'downsample' in n for n in names)


def from_mmdet(state):
    """mmdet's ``layer{i+1}.0`` is ``first_blocks.{i}``, ``layer{i+1}.{k+1}`` is
    ``stages.{i}.{k}``; the other names are the same."""
    renamed = {}
    for key, value in state.items():
        m = re.match(r'layer(\d)\.(\d+)\.(.*)', key)
        if m:
            i, k, rest = int(m[1]) - 1, int(m[2]), m[3]
            key = f'first_blocks.{i}.{rest}' if k == 0 else f'stages.{i}.{k - 1}.{rest}'
        renamed[key] = value
    return renamed


@pytest.mark.parametrize('depth', [18, 50])
def test_sequential_layout_is_mmdet_resnet(depth):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    ref = ResNet(depth)
    ref.init_weights()
    ref.eval()
    ours = StepsResNet(depth, layout='sequential').eval()
    ours.load_state_dict(from_mmdet(ref.state_dict()))  # strict: every name maps
    x = torch.randn(2, 3, 65, 97)
    with torch.no_grad():
        assert_outputs_close(ref(x), ours(x))


def test_block_forward_adds_then_rectifies():
    block = BasicBlock(8, 8).eval()
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x + block.residual(x)))
    first = Bottleneck(8, 16, stride=2).eval()
    out = first(x)
    assert out.shape == (2, 16, 3, 3)
    torch.testing.assert_close(out, torch.relu(first.downsample(x) + first.residual(x)))


def test_parallel_layout_sums_the_baseline_branches():
    seq = StepsResNet(18, layout='sequential')
    par = StepsResNet(18, layout='parallel')
    assert num_params(seq) == num_params(par)
    par.load_state_dict(seq.state_dict())  # same parameter names and shapes
    par.eval()
    stage = par.stages[1]  # ResNet-18 stage 2: one block after the first
    x = torch.randn(2, 128, 8, 8)
    torch.testing.assert_close(stage(x), x + stage[0].residual(x))  # no ReLU after
    r34 = StepsResNet(34, layout='parallel').eval()
    x = torch.randn(1, 256, 4, 4)
    stage = r34.stages[2]
    torch.testing.assert_close(stage(x), x + sum(b.residual(x) for b in stage))
    outs = par(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]


@pytest.mark.parametrize('depth', [18, 50])
def test_backward_reaches_every_parameter(depth):
    model = StepsResNet(depth)
    assert_every_parameter_gets_a_gradient(model, torch.randn(2, 3, 64, 64))


def test_with_cp_same_outputs_and_grads():
    torch.manual_seed(0)
    ref = StepsResNet(18)
    cp = StepsResNet(18, with_cp=True)
    assert_checkpointing_changes_nothing(ref, cp, torch.randn(2, 3, 64, 64))


def test_frozen_stages_and_norm_eval_survive_train():
    model = StepsResNet(18, frozen_stages=1, norm_eval=True)
    model.train()
    for module in (model.conv1, model.bn1, model.first_blocks[0], model.stages[0]):
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())
    assert model.stages[1].training and model.first_blocks[1].conv1.training
    assert all(p.requires_grad for p in model.first_blocks[1].parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, _BatchNorm))
    stem_only = StepsResNet(18, frozen_stages=0).train()
    assert not stem_only.bn1.training and not stem_only.conv1.weight.requires_grad
    assert stem_only.first_blocks[0].bn1.training
    assert all(p.requires_grad for p in stem_only.stages[0].parameters())
    assert all(p.requires_grad for p in StepsResNet(18).parameters())


def test_drop_path_linear_over_all_blocks_and_off_in_eval():
    model = StepsResNet(18, drop_path_rate=0.2)
    rates = [b.drop_path.drop_prob for b in blocks_in_order(model)]
    assert len(rates) == 18  # the first blocks included
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.2, 18))
    x = torch.randn(2, 3, 64, 64)
    no_drop = StepsResNet(18).eval()
    no_drop.load_state_dict(model.state_dict())
    model.eval()
    assert_outputs_close(model(x), no_drop(x))
    model.train()
    no_drop.train()
    torch.manual_seed(1)
    assert not torch.allclose(model(x)[-1], no_drop(x)[-1])


def test_out_indices_and_gap():
    model = StepsResNet(18, out_indices=(-1, 1), gap_before_final_norm=True)
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in outs] == [torch.Size([2, 128]), torch.Size([2, 512])]
    assert [f['reduction'] for f in model.feature_info] == [8, 32]
    assert model.feature_info[1]['module'] == 'stages.3'


def test_zero_init_residual():
    model = StepsResNet(18)
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, ResNetBlock)]
    assert len(blocks) == 18
    assert all(b.last_norm.weight.abs().sum() == 0 for b in blocks)
    assert model.bn1.weight.abs().sum() > 0
    model = StepsResNet(18, zero_init_residual=False)
    model.init_weights()
    assert all(b.last_norm.weight.abs().sum() > 0 for b in blocks_in_order(model))
    # as mmdet: a given init_cfg (e.g. pretrained weights) is left alone
    assert not StepsResNet(18, init_cfg=dict(type='Kaiming', layer='Conv2d')
                           ).zero_init_residual


# Parameter counts with the 1000-class ImageNet head (pinned), and the paper's
# Table 1 blocks and layers.
PARAMS = {
    (18, 'sequential'): (11_689_512, 8, 18),  # the reference ResNet-18
    (34, 'sequential'): (21_797_672, 16, 34),  # the reference ResNet-34
    (50, 'sequential'): (25_557_032, 16, 50),  # the reference ResNet-50
    (18, 'steps'): (11_689_060, 18, 38),
    (34, 'steps'): (21_795_824, 34, 70),
    (50, 'steps'): (25_567_176, 34, 104),
}


@pytest.mark.parametrize('depth, layout', sorted(PARAMS))
def test_parameter_block_and_layer_counts(depth, layout):
    model = StepsImageClassifier(dict(type='StepsResNet', depth=depth, layout=layout))
    params, blocks, layers = PARAMS[depth, layout]
    assert num_params(model) == params
    assert count_blocks_and_layers(model) == (blocks, layers)


@pytest.mark.parametrize('kwargs, message', [
    (dict(depth=101), 'invalid depth 101; choose one of \\[18, 34, 50\\]'),
    (dict(depth='50'), "invalid depth '50'; choose one of \\[18, 34, 50\\]"),
    (dict(layout='stepped'), "layout must be one of \\('sequential', 'steps', "
                             "'parallel'\\)"),
    (dict(out_indices=(4,)), 'out_indices must be ints in \\[-4, 3\\]'),
    (dict(out_indices=(0, -4)), 'name the same output twice'),
    (dict(frozen_stages=5), 'frozen_stages must be in \\[-1, 4\\]'),
])
def test_bad_input_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StepsResNet(**kwargs)
