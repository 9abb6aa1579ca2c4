"""StepsConvNeXt: shapes, gradients, options and parameter counts."""
import pytest
import torch

from steps_mm.models import StepsConvNeXt, StepsImageClassifier

from backbone_checks import (assert_checkpointing_changes_nothing,
                             assert_every_parameter_gets_a_gradient,
                             assert_outputs_close)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def dense(**kwargs):
    kwargs.setdefault('out_indices', (0, 1, 2, 3))
    return StepsConvNeXt(gap_before_final_norm=False, **kwargs)


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
@pytest.mark.parametrize('layout', ['steps', 'sequential'])
def test_forward_shapes(arch, layout):
    model = dense(arch=arch, layout=layout).eval()
    widths = StepsConvNeXt.arch_settings[arch]['channels']
    with torch.no_grad():
        for h, w in ((224, 224), (65, 97)):
            outs = model(torch.randn(1, 3, h, w))
            assert [o.shape[1] for o in outs] == widths
            expected = [(h // 4, w // 4)]
            for _ in range(3):
                expected.append((expected[-1][0] // 2, expected[-1][1] // 2))
            assert [tuple(o.shape[2:]) for o in outs] == expected
    assert model.out_channels == widths
    assert model.out_strides == [4, 8, 16, 32]


def test_parallel_layout_runs_the_baseline_blocks():
    seq = dense(layout='sequential', layer_scale_init_value=1.0)
    par = dense(layout='parallel', layer_scale_init_value=1.0)
    assert num_params(seq) == num_params(par)
    par.load_state_dict(seq.state_dict())  # same parameter names and shapes
    x = torch.randn(1, 3, 64, 64)
    outs = par.eval()(x)
    assert [o.shape[1] for o in outs] == [96, 192, 384, 768]
    assert not torch.allclose(outs[-1], seq.eval()(x)[-1])


def test_steps_stage_layout():
    model = StepsConvNeXt('tiny')
    assert [len(s) for s in model.stages] == [3, 3, 15, 11]
    assert model.stages[2].spec == [(192, 6), (272, 3), (384, 6)]
    assert model.stages[3][0].depthwise_conv.in_channels == 192
    assert model.stages[3][10].depthwise_conv.in_channels == 768
    # parameter names are those of mmpretrain's ConvNeXt
    names = set(dict(model.named_parameters()))
    assert {'downsample_layers.0.0.weight', 'stages.2.14.gamma',
            'stages.3.10.pointwise_conv2.bias', 'norm3.weight'} <= names


def test_backward_reaches_every_parameter():
    model = dense(layer_scale_init_value=1.0)
    assert_every_parameter_gets_a_gradient(model, torch.randn(2, 3, 64, 64))


def test_with_cp_same_outputs_and_grads():
    torch.manual_seed(0)
    ref = dense(layer_scale_init_value=1.0)
    cp = dense(layer_scale_init_value=1.0, with_cp=True)
    assert_checkpointing_changes_nothing(ref, cp, torch.randn(2, 3, 64, 64))


def test_frozen_stages_survive_train():
    model = dense(frozen_stages=2)
    model.train()
    for i in range(2):
        for module in (model.downsample_layers[i], model.stages[i]):
            assert not module.training
            assert not any(p.requires_grad for p in module.parameters())
    assert model.stages[2].training
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert all(p.requires_grad for p in model.downsample_layers[2].parameters())


def test_drop_path_linear_over_all_blocks_and_off_in_eval():
    model = dense(drop_path_rate=0.4)
    rates = [block.drop_path.drop_prob for stage in model.stages for block in stage]
    assert len(rates) == 32
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.4, 32))
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    no_drop = dense(drop_path_rate=0.).eval()
    no_drop.load_state_dict(model.state_dict())
    assert_outputs_close(model(x), no_drop(x))
    model.train()
    torch.manual_seed(1)
    assert not torch.allclose(model(x)[-1], no_drop(x)[-1])


def test_out_indices_and_gap():
    model = StepsConvNeXt(out_indices=(-1, 1), gap_before_final_norm=True)
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in outs] == [torch.Size([2, 192]), torch.Size([2, 768])]
    assert [f['reduction'] for f in model.feature_info] == [8, 32]
    assert hasattr(model, 'norm1') and not hasattr(model, 'norm0')


# Parameter counts with the 1000-class ImageNet head (pinned).
PARAMS = {
    ('tiny', 'sequential'): 28_589_128,  # the reference ConvNeXt-T
    ('small', 'sequential'): 50_223_688,  # the reference ConvNeXt-S
    ('base', 'sequential'): 88_591_464,  # the reference ConvNeXt-B
    ('tiny', 'steps'): 28_757_736,
    ('small', 'steps'): 50_392_296,
    ('base', 'steps'): 88_626_296,
}


@pytest.mark.parametrize('arch, layout', sorted(PARAMS))
def test_parameter_counts(arch, layout):
    model = StepsImageClassifier(dict(type='StepsConvNeXt', arch=arch, layout=layout))
    assert num_params(model) == PARAMS[arch, layout]


def test_steps_tiny_within_one_percent_of_convnext_tiny():
    model = StepsImageClassifier(dict(type='StepsConvNeXt', arch='tiny'))
    assert abs(num_params(model) / 28_589_128 - 1) < 0.01


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(arch='tiny '), ValueError, "unknown arch 'tiny '; choose one of \\['base', "
                                     "'small', 'tiny'\\]"),
    (dict(arch='huge'), ValueError, 'unknown arch'),
    (dict(layout='stepped'), ValueError, "layout must be one of \\('sequential', "
                                         "'steps', 'parallel'\\)"),
    (dict(out_indices=(4,)), ValueError, 'out_indices must be ints in \\[-4, 3\\]'),
    (dict(out_indices=(-5,)), ValueError, 'out_indices must be ints in \\[-4, 3\\]'),
    (dict(out_indices=(1, -3)), ValueError, 'name the same output twice'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages must be in \\[-1, 4\\]'),
    (dict(arch=dict(channels=[32, 64], depths=[1, 1])), ValueError,
     "needs keys \\['channels', 'depths', 'steps'\\]; missing \\['steps'\\]"),
    (dict(arch=dict(channels=[32, 64], depths=[1, 1],
                    steps=[[(32, 1)], [(16, 1), (48, 1)]])), ValueError,
     'stage 1: the last step width must equal the stage width 64'),
    (dict(arch=dict(channels=[32, 64], depths=[1, 1],
                    steps=[[(32, 1)], [(40, 1), (16, 1), (64, 1)]])), ValueError,
     'stage 1: step widths must be strictly increasing'),
    (dict(arch=dict(channels=[32, 64], depths=[1, 1],
                    steps=[[(32, 1)], [(40, -2), (64, 1)]])), ValueError,
     'stage 1, step 0: depth must be >= 0'),
    (dict(arch=dict(channels=[32, 64], depths=[1], steps=[])), ValueError,
     'same length'),
])
def test_bad_input_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        StepsConvNeXt(**kwargs)


def test_custom_arch():
    arch = dict(channels=[16, 32], depths=[1, 2], steps=[[(16, 1)], [(8, 2), (32, 1)]])
    model = StepsConvNeXt(arch, out_indices=(0, 1), gap_before_final_norm=False)
    assert [len(s) for s in model.stages] == [1, 3]
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [16, 32]
    seq = StepsConvNeXt(arch, layout='sequential')
    assert [len(s) for s in seq.stages] == [1, 2]
