"""StepsViT: shapes, block outputs, gradients, options and parameter counts."""
import pytest
import torch

from steps_mm.analysis import count_blocks_and_layers
from steps_mm.models import StepsImageClassifier, StepsViT
from steps_mm.models.backbones.vit import segment_spec
from steps_mm.models.blocks import TransformerBlock
from steps_mm.models.pretrained import match_state_dict

from backbone_checks import (assert_checkpointing_changes_nothing,
                             assert_every_parameter_gets_a_gradient,
                             assert_outputs_close, paired)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def dense(**kwargs):
    kwargs.setdefault('out_indices', (2, 5, -1))
    return StepsViT(out_type='featmap', **kwargs)


def tokens(model, x):
    """The trunk input: class token + patch tokens + position embedding."""
    x = model.patch_embed(x)
    pos = model.resized_pos_embed(*x.shape[2:])
    return torch.cat([model.cls_token.expand(x.shape[0], -1, -1),
                      x.flatten(2).transpose(1, 2)], 1) + pos


def reference_states(model, x):
    """The state after every block, from the StepsNet formula written out:
    the blocks of step i run on the first C_i channels, the rest wait."""
    y, states, blocks = None, [], iter(model.layers)
    for width, depth in model.layers.spec:
        done = 0 if y is None else y.size(-1)
        y = x[..., :width] if y is None else torch.cat([y, x[..., done:width]], -1)
        for _ in range(depth):
            y = next(blocks)(y)
            states.append(torch.cat([y, x[..., y.size(-1):]], -1))
    return states


ARCHS = ['deit-tiny', 'deit-small', 'deit-base']


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('layout', ['steps', 'sequential'])
def test_forward_shapes(arch, layout):
    model = dense(arch=arch, layout=layout, out_indices=(0, 5, -1)).eval()
    width = StepsViT.arch_settings[arch]['channels'][0]
    with torch.no_grad():
        for (h, w), grid in (((224, 224), (14, 14)), ((65, 97), (5, 7))):
            outs = model(torch.randn(1, 3, h, w))
            assert [tuple(o.shape) for o in outs] == [(1, width) + grid] * 3
    assert model.out_channels == [width] * 3
    assert model.out_strides == [16] * 3
    last = model.num_blocks - 1
    assert [f['module'] for f in model.feature_info] == \
        ['layers.0', 'layers.5', f'layers.{last}']


def test_class_token_vectors():
    model = StepsViT('deit-tiny', out_indices=(3, -1), out_type='cls_token').eval()
    x = torch.randn(2, 3, 64, 64)
    outs = model(x)
    assert [o.shape for o in outs] == [torch.Size([2, 192])] * 2
    states = reference_states(model, tokens(model, x))
    torch.testing.assert_close(outs[0], states[3][:, 0])
    torch.testing.assert_close(outs[1], model.ln1(states[-1])[:, 0])


@pytest.mark.parametrize('out_indices', [(11, 12, 17, 23), (0, 5, -1), (-1,)])
def test_block_outputs_are_trunk_states(out_indices):
    """An output is the step output joined with the not yet processed channels;
    cutting the trunk at the outputs does not change what it computes."""
    model = dense(arch='deit-tiny', out_indices=out_indices).eval()
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        states = reference_states(model, tokens(model, x))
        outs = model(x)
        whole = model.layers(tokens(model, x))
    torch.testing.assert_close(whole, states[-1])
    for k, out in paired(model.out_indices, outs):
        state = model.ln1(states[k]) if k == 23 else states[k]
        torch.testing.assert_close(out, state[:, 1:].transpose(1, 2).reshape(out.shape))
    # the parameter names do not depend on out_indices
    assert list(model.state_dict()) == list(dense(arch='deit-tiny').state_dict())


def test_parallel_layout_outputs_partial_sums():
    seq = dense(arch='deit-tiny', layout='sequential')
    par = dense(arch='deit-tiny', layout='parallel', out_indices=(2, 11))
    assert num_params(seq) == num_params(par)
    par.load_state_dict(seq.state_dict())  # same parameter names and shapes
    par.eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        t = tokens(par, x)
        branches = [block.residual(t) for block in par.layers]
        outs = par(x)
        torch.testing.assert_close(par.layers(t), t + sum(branches))
    expected = [t + sum(branches[:3]), par.ln1(t + sum(branches))]
    for out, state in paired(outs, expected):
        torch.testing.assert_close(out, state[:, 1:].transpose(1, 2).reshape(out.shape))


def test_sequential_layout_is_mmseg_vit():
    from mmseg.models.backbones import VisionTransformer
    torch.manual_seed(0)
    ref = VisionTransformer(embed_dims=192, num_heads=3, out_indices=(2, 11),
                            patch_bias=True, final_norm=True,
                            norm_cfg=dict(type='LN', eps=1e-6))
    ref.eval()
    ours = dense(arch='deit-tiny', layout='sequential', out_indices=(2, 11)).eval()
    ours.load_state_dict({  # strict: every other name is the same
        k.replace('attn.attn.in_proj_', 'attn.qkv.').replace('attn.attn.out_proj',
                                                              'attn.proj'): v
        for k, v in ref.state_dict().items()})
    with torch.no_grad():
        for x in (torch.randn(1, 3, 224, 224), torch.randn(2, 3, 65, 97)):
            assert_outputs_close(ref(x), ours(x))


def test_transformer_block_residual_is_exact():
    block = TransformerBlock(16, 2).eval()
    x = torch.randn(2, 5, 16)
    attn = block.attn(block.ln1(x))
    mlp = block.ffn(block.ln2(x + attn))
    torch.testing.assert_close(block.residual(x), attn + mlp, rtol=0, atol=0)
    torch.testing.assert_close(block(x), (x + attn) + mlp, rtol=0, atol=0)


def test_steps_layout_and_names():
    model = StepsViT('deit-small')
    assert len(model.layers) == 24
    assert model.layers.spec == [(192, 12), (272, 6), (384, 6)]
    assert [model.layers[k].attn.num_heads for k in (0, 12, 23)] == [3, 4, 6]
    assert model.layers[12].attn.qkv.in_features == 272
    names = set(dict(model.named_parameters()))
    assert {'patch_embed.projection.weight', 'cls_token', 'pos_embed',
            'layers.0.ln1.weight', 'layers.0.attn.qkv.weight', 'layers.0.attn.proj.bias',
            'layers.23.ln2.bias', 'layers.23.ffn.layers.0.0.weight',
            'layers.23.ffn.layers.1.bias', 'ln1.weight'} <= names
    assert len(StepsViT('deit-small', layout='sequential').layers) == 12


def test_segment_spec():
    spec = [(96, 12), (136, 6), (192, 6)]
    assert segment_spec(spec, 0, 3) == [(96, 3), (192, 0)]
    assert segment_spec(spec, 3, 12) == [(96, 9), (192, 0)]
    assert segment_spec(spec, 12, 13) == [(136, 1), (192, 0)]
    assert segment_spec(spec, 10, 24) == [(96, 2), (136, 6), (192, 6)]
    assert segment_spec(spec, 18, 24) == [(192, 6)]
    assert segment_spec([(8, 2), (16, 0)], 0, 2) == [(8, 2), (16, 0)]


def test_position_embedding_resize():
    model = StepsViT('deit-tiny', img_size=(64, 96))
    assert model.pos_embed.shape == (1, 1 + 4 * 6, 192)
    assert model.resized_pos_embed(4, 6) is model.pos_embed
    resized = model.resized_pos_embed(8, 12)
    assert resized.shape == (1, 1 + 8 * 12, 192)
    torch.testing.assert_close(resized[:, 0], model.pos_embed[:, 0])
    # a constant embedding stays constant under bicubic resizing
    with torch.no_grad():
        model.pos_embed.fill_(0.5)
    torch.testing.assert_close(model.resized_pos_embed(3, 5),
                               torch.full((1, 16, 192), 0.5))


def test_checkpoint_at_another_size_loads_resized():
    from mmengine.runner.checkpoint import load_state_dict
    deit = StepsViT('deit-tiny', layout='sequential')  # a 224x224 checkpoint
    segmenter = StepsViT('deit-tiny', layout='sequential', img_size=(64, 96))
    load_state_dict(segmenter, deit.state_dict(), strict=True)
    torch.testing.assert_close(segmenter.pos_embed,
                               deit.resized_pos_embed(4, 6))
    torch.testing.assert_close(segmenter.layers[3].attn.qkv.weight,
                               deit.layers[3].attn.qkv.weight)


def test_backward_reaches_every_parameter():
    model = dense(arch='deit-tiny', drop_path_rate=0.1)
    assert_every_parameter_gets_a_gradient(
        model, torch.randn(2, 3, 32, 48),
        loss=lambda outs: sum((o * torch.randn_like(o)).sum() for o in outs))


@pytest.mark.parametrize('layout', ['steps', 'sequential'])
def test_without_final_norm_every_parameter_gets_a_gradient(layout):
    """mmseg's ViT recipes (final_norm=False, as the shipped UperNet configs):
    a final norm built but unused stopped their multi-GPU training, DDP finding
    parameters without a gradient. A checkpoint's final norm is then dropped."""
    model = dense(arch='deit-tiny', layout=layout, final_norm=False,
                  out_indices=(3, 7, 11) if layout == 'sequential' else (5, 11, 23))
    assert not any(name.startswith('ln1.') for name, _ in model.named_parameters())
    assert_every_parameter_gets_a_gradient(
        model, torch.randn(2, 3, 32, 48),
        loss=lambda outs: sum((o * torch.randn_like(o)).sum() for o in outs))
    with_norm = dense(arch='deit-tiny', layout=layout)
    report = match_state_dict(model, with_norm.state_dict(), 'a DeiT with its final norm')
    assert report.dropped == ['ln1.weight', 'ln1.bias'] and not report.unexpected


@pytest.mark.parametrize('layout', ['steps', 'parallel'])
def test_with_cp_same_outputs_and_grads(layout):
    torch.manual_seed(0)
    ref = dense(arch='deit-tiny', layout=layout)
    cp = dense(arch='deit-tiny', layout=layout, with_cp=True)
    assert_checkpointing_changes_nothing(ref, cp, torch.randn(2, 3, 32, 48))


def test_frozen_stages_survive_train():
    model = dense(arch='deit-tiny', frozen_stages=5)
    model.train()
    frozen = [model.patch_embed, *list(model.layers)[:5]]
    for module in frozen:
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())
    assert not model.cls_token.requires_grad and not model.pos_embed.requires_grad
    assert model.layers[5].training and model.ln1.training
    assert all(p.requires_grad for p in model.layers[5].parameters())
    assert model.ln1.weight.requires_grad
    embed_only = dense(arch='deit-tiny', frozen_stages=0).train()
    assert not embed_only.pos_embed.requires_grad and not embed_only.patch_embed.training
    assert all(p.requires_grad for p in embed_only.layers.parameters())
    everything = dense(arch='deit-tiny', frozen_stages=24).train()
    assert not any(p.requires_grad for p in everything.parameters())
    assert all(p.requires_grad for p in dense(arch='deit-tiny').parameters())


def test_drop_path_linear_over_all_blocks_and_off_in_eval():
    model = dense(arch='deit-tiny', drop_path_rate=0.1)
    rates = [block.drop_path.drop_prob for block in model.layers]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.1, 24))
    x = torch.randn(2, 3, 32, 48)
    no_drop = dense(arch='deit-tiny').eval()
    no_drop.load_state_dict(model.state_dict())
    model.eval()
    assert_outputs_close(model(x), no_drop(x))
    model.train()
    no_drop.train()
    torch.manual_seed(1)
    assert not torch.allclose(model(x)[-1], no_drop(x)[-1])


# Parameter counts with the 1000-class ImageNet head at 224x224 (pinned), and
# the paper's Table 1 blocks and layers.
PARAMS = {
    ('deit-tiny', 'sequential'): (5_717_416, 12, 62),  # the reference DeiT-T
    ('deit-small', 'sequential'): (22_050_664, 12, 62),  # the reference DeiT-S
    ('deit-base', 'sequential'): (86_567_656, 12, 62),  # the reference DeiT-B
    ('deit-tiny', 'steps'): (5_732_632, 24, 122),
    ('deit-small', 'steps'): (22_090_312, 24, 122),
    ('deit-base', 'steps'): (86_683_816, 24, 122),
}


@pytest.mark.parametrize('arch, layout', sorted(PARAMS))
def test_parameter_block_and_layer_counts(arch, layout):
    model = StepsImageClassifier(dict(type='StepsViT', arch=arch, layout=layout))
    params, blocks, layers = PARAMS[arch, layout]
    assert num_params(model) == params
    assert count_blocks_and_layers(model) == (blocks, layers)


def custom(heads, steps=((8, 1), (16, 1))):
    return dict(channels=[16], depths=[2], heads=heads, steps=[list(steps)])


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='deit-huge'), "unknown arch 'deit-huge'; choose one of "
                             "\\['deit-base', 'deit-small', 'deit-tiny'\\]"),
    (dict(arch=custom({8: 3, 16: 2})), 'stage 0, step 0: heads 3 do not divide '
                                       'width 8'),
    (dict(arch=custom({16: 2})), 'step 0: no attention heads given for width 8'),
    (dict(arch=custom({16: 3}), layout='sequential'), 'heads 3 do not divide '
                                                      'width 16'),
    (dict(arch=dict(channels=[16, 32], depths=[1, 1], heads={16: 1, 32: 1}),
          layout='sequential'), 'the trunk is one stage'),
    (dict(out_indices=24), 'out_indices \\(block indices\\) must be ints in '
                           '\\[-24, 23\\]'),
    (dict(out_indices=(3, -25)), 'must be ints in \\[-24, 23\\]'),
    (dict(out_type='avg_featmap'), "out_type must be one of \\('featmap', "
                                   "'cls_token'\\), got 'avg_featmap'"),
    (dict(layout='sequential', out_indices=12), 'must be ints in \\[-12, 11\\]'),
    (dict(frozen_stages=25), 'frozen_stages must be in \\[-1, 24\\]'),
    (dict(layout='shallow'), 'layout must be one of'),
])
def test_bad_input_errors(kwargs, message):
    kwargs.setdefault('arch', 'deit-tiny')
    with pytest.raises(ValueError, match=message):
        StepsViT(**kwargs)


def test_custom_arch():
    model = StepsViT(custom({8: 2, 16: 4}), out_indices=(0, 1),
                     out_type='featmap')
    outs = model(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 2, 2)] * 2
