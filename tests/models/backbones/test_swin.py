"""StepsSwinTransformer and SwinBlock: window attention against a direct computation,
equality with mmseg's Swin, shapes, gradients, options and parameter counts."""
import math

import pytest
import torch
import torch.nn.functional as F

from steps_mm.models import StepsImageClassifier, StepsSwinTransformer
from steps_mm.models.blocks import SwinBlock
from steps_mm.models.blocks.swin import ShiftWindowMSA

from backbone_checks import (assert_checkpointing_changes_nothing,
                             assert_every_parameter_gets_a_gradient,
                             assert_outputs_close)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Small tensors gain nothing from threads, and on a shared CPU OpenMP's
    waiting threads make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def dense(**kwargs):
    kwargs.setdefault('out_indices', (0, 1, 2, 3))
    return StepsSwinTransformer(gap_before_final_norm=False, **kwargs)


# ---- window attention against an explicit per-window computation ---------------------
def reference_window_attention(module: ShiftWindowMSA, x: torch.Tensor) -> torch.Tensor:
    """Swin's (S)W-MSA computed window by window from its definition: pad the map,
    roll it by -shift, attend within each window, except between tokens the roll
    wrapped around from opposite borders (a different region id), bias each pair by
    its offset in the window."""
    msa, window, shift = module.w_msa, module.window_size, module.shift_size
    B, H, W, C = x.shape
    Hp, Wp = math.ceil(H / window) * window, math.ceil(W / window) * window
    xp = F.pad(x, (0, 0, 0, Wp - W, 0, Hp - H))
    heads, head_dim = msa.num_heads, C // msa.num_heads
    cells = [(a, b) for a in range(window) for b in range(window)]
    bias = torch.empty(heads, len(cells), len(cells))
    for i, (ai, bi) in enumerate(cells):
        for j, (aj, bj) in enumerate(cells):
            row = (ai - aj + window - 1) * (2 * window - 1) + (bi - bj + window - 1)
            bias[:, i, j] = msa.relative_position_bias_table[row]
    out = torch.zeros_like(xp)
    for wi in range(Hp // window):
        for wj in range(Wp // window):
            # rolled position (wi * window + a, ...) holds original (... + shift) mod size
            orig = [((wi * window + a + shift) % Hp, (wj * window + b + shift) % Wp)
                    for a, b in cells]
            region = torch.tensor([(r < shift) * 2 + (c < shift) for r, c in orig])
            allowed = region[:, None] == region[None, :]
            rows, cols = torch.tensor(orig).T
            tokens = xp[:, rows, cols]  # B, N, C
            q, k, v = msa.qkv(tokens).split(C, dim=-1)
            q, k, v = (t.reshape(B, -1, heads, head_dim).transpose(1, 2)
                       for t in (q, k, v))
            logits = q @ k.transpose(-2, -1) / math.sqrt(head_dim) + bias
            attn = logits.masked_fill(~allowed, float('-inf')).softmax(-1)
            merged = (attn @ v).transpose(1, 2).reshape(B, -1, C)
            out[:, rows, cols] = msa.proj(merged)
    return out[:, :H, :W]


@pytest.mark.parametrize('window, shift, size', [
    (4, 0, (10, 13)), (4, 2, (10, 13)), (4, 2, (8, 8)), (4, 2, (3, 5)),
    (7, 3, (9, 16)), (7, 0, (9, 16)), (3, 1, (7, 6))])
def test_window_attention_matches_reference(window, shift, size):
    torch.manual_seed(0)
    module = ShiftWindowMSA(embed_dims=12, num_heads=3, window_size=window,
                            shift_size=shift)
    x = torch.randn(2, *size, 12)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference_window_attention(module, x),
                                   atol=1e-5, rtol=1e-5)


def test_block_residual_is_two_residual_swin_block():
    torch.manual_seed(0)
    block = SwinBlock(16, 2, window_size=4, shift=True).eval()
    x = torch.randn(1, 6, 9, 16)
    with torch.no_grad():
        y = x + block.attn(block.norm1(x))
        y = y + block.ffn(block.norm2(y))
        torch.testing.assert_close(block(x), y)
        torch.testing.assert_close(block.residual(x), y - x)


def test_sequential_layout_is_mmseg_swin():
    from mmseg.models.backbones import SwinTransformer
    torch.manual_seed(0)
    ref = SwinTransformer(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                          window_size=7, drop_path_rate=0.)
    ref.eval()  # mmseg's train() returns None
    ours = dense(layout='sequential').eval()
    assert set(ours.state_dict()) == set(ref.state_dict())
    ref_index = ref.state_dict()['stages.0.blocks.0.attn.w_msa.relative_position_index']
    assert torch.equal(ours.stages[0].blocks[0].attn.w_msa.relative_position_index,
                       ref_index)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 65, 97)
    with torch.no_grad():
        assert_outputs_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


# ---- the backbone --------------------------------------------------------------------
@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
@pytest.mark.parametrize('layout', ['steps', 'sequential'])
def test_forward_shapes(arch, layout):
    model = dense(arch=arch, layout=layout).eval()
    widths = StepsSwinTransformer.arch_settings[arch]['channels']
    with torch.no_grad():
        for h, w in ((224, 224), (65, 97)):
            outs = model(torch.randn(1, 3, h, w))
            assert [o.shape[1] for o in outs] == widths
            expected = [(math.ceil(h / 4), math.ceil(w / 4))]  # padded, as Swin
            for _ in range(3):
                expected.append(tuple(math.ceil(s / 2) for s in expected[-1]))
            assert [tuple(o.shape[2:]) for o in outs] == expected
    assert model.out_channels == widths
    assert model.out_strides == [4, 8, 16, 32]


def test_steps_stage_layout():
    model = StepsSwinTransformer('tiny')
    assert [len(s.blocks) for s in model.stages] == [2, 2, 12, 10]
    stage3 = model.stages[2].blocks
    assert stage3.spec == [(192, 6), (272, 3), (384, 3)]
    # W-MSA / SW-MSA alternate within each step
    assert [b.attn.shift_size for b in stage3] == [0, 3, 0, 3, 0, 3, 0, 3, 0, 0, 3, 0]
    assert [b.attn.w_msa.num_heads for b in model.stages[3].blocks] == \
        [6] * 4 + [8] * 2 + [12] * 2 + [16] * 2
    assert model.stages[3].downsample is None
    names = set(dict(model.named_parameters()))
    assert {'patch_embed.projection.weight', 'stages.2.downsample.reduction.weight',
            'stages.3.blocks.9.attn.w_msa.relative_position_bias_table',
            'stages.3.blocks.9.ffn.layers.1.bias', 'norm3.weight'} <= names


def test_backward_reaches_every_parameter():
    model = dense()
    assert_every_parameter_gets_a_gradient(model, torch.randn(2, 3, 64, 64))


def test_with_cp_same_outputs_and_grads():
    torch.manual_seed(0)
    ref = dense()
    cp = dense(with_cp=True)
    assert_checkpointing_changes_nothing(ref, cp, torch.randn(2, 3, 64, 64))


def test_frozen_stages_survive_train():
    model = dense(frozen_stages=2)
    model.train()
    for module in (model.patch_embed, model.stages[0], model.stages[1],
                   model.norm0, model.norm1):
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())
    for module in (model.stages[2], model.norm2):
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    only_embed = dense(frozen_stages=0).train()
    assert not any(p.requires_grad for p in only_embed.patch_embed.parameters())
    assert all(p.requires_grad for p in only_embed.stages.parameters())
    assert all(p.requires_grad for p in dense(frozen_stages=-1).parameters())


def test_drop_path_linear_over_all_blocks_and_off_in_eval():
    model = dense(drop_path_rate=0.3)
    rates = [b.drop_path.drop_prob for s in model.stages for b in s.blocks]
    assert len(rates) == 26
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.3, 26))
    x = torch.randn(2, 3, 64, 64)
    no_drop = dense(drop_path_rate=0.).eval()
    no_drop.load_state_dict(model.state_dict())
    model.eval()
    with torch.no_grad():
        assert_outputs_close(model(x), no_drop(x))
        model.train()
        torch.manual_seed(1)
        assert not torch.allclose(model(x)[-1], no_drop(x)[-1])


def test_parallel_layout_runs_the_baseline_blocks():
    seq = dense(layout='sequential')
    par = dense(layout='parallel')
    assert num_params(seq) == num_params(par)
    par.load_state_dict(seq.state_dict())  # same parameter names and shapes
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outs = par.eval()(x)
        assert [o.shape[1] for o in outs] == [96, 192, 384, 768]
        assert not torch.allclose(outs[-1], seq.eval()(x)[-1])


def test_out_indices_gap_and_classifier():
    model = StepsSwinTransformer(out_indices=(-1, 1), gap_before_final_norm=True)
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in outs] == [torch.Size([2, 192]), torch.Size([2, 768])]
    assert [f['reduction'] for f in model.feature_info] == [8, 32]
    assert hasattr(model, 'norm1') and not hasattr(model, 'norm0')
    clf = StepsImageClassifier(dict(type='StepsSwinTransformer', arch='tiny'),
                               num_classes=10).eval()
    with torch.no_grad():
        assert clf(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_registered_in_mmdet_and_mmseg():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    assert DET.get('StepsSwinTransformer') is StepsSwinTransformer
    assert SEG.get('StepsSwinTransformer') is StepsSwinTransformer


# Parameter counts with the 1000-class ImageNet head (pinned). Table 1 of the paper:
# Swin 28.3M / 49.6M / 87.8M, Steps-Swin 27.8M / 49.1M / 86.7M; the printed step
# tables give the baseline's sum(D * C^2) per stage, hence about its parameters.
PARAMS = {
    ('tiny', 'sequential'): 28_288_354,  # the reference Swin-T
    ('small', 'sequential'): 49_606_258,  # the reference Swin-S
    ('base', 'sequential'): 87_768_224,  # the reference Swin-B
    ('tiny', 'steps'): 28_372_282,
    ('small', 'steps'): 49_690_186,
    ('base', 'steps'): 87_598_964,
}


# Residual blocks and layers (a Swin block is 5), as Table 1 gives them.
BLOCKS_AND_LAYERS = {'sequential': {'tiny': (12, 65), 'small': (24, 125),
                                    'base': (24, 125)},
                     'steps': {'tiny': (26, 135), 'small': (38, 195),
                               'base': (38, 195)}}


@pytest.mark.parametrize('arch, layout', sorted(PARAMS))
def test_parameter_block_and_layer_counts(arch, layout):
    from steps_mm.analysis import count_blocks_and_layers
    model = StepsImageClassifier(dict(type='StepsSwinTransformer', arch=arch,
                                      layout=layout))
    assert num_params(model) == PARAMS[arch, layout]
    assert count_blocks_and_layers(model) == BLOCKS_AND_LAYERS[layout][arch]


@pytest.mark.parametrize('layout', ['sequential', 'steps'])
def test_tiny_flops_match_table_1(layout):
    from mmengine.analysis import FlopAnalyzer
    model = StepsImageClassifier(dict(type='StepsSwinTransformer', layout=layout))
    flops = FlopAnalyzer(model.eval(), torch.randn(1, 3, 224, 224))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    assert flops.by_operator()['matmul'] > 0  # the attention matmuls are counted
    assert abs(flops.total() / 1e9 - 4.5) < 0.1  # MACs; 4.509G and 4.538G


def _custom(steps_stage1, heads):
    return dict(channels=[32, 64], depths=[1, 1], heads=heads,
                steps=[[(32, 1)], steps_stage1])


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='tiny '), "unknown arch 'tiny '; choose one of \\['base', "
                         "'small', 'tiny'\\]"),
    (dict(layout='stepped'), "layout must be one of"),
    (dict(out_indices=(4,)), 'out_indices must be ints in \\[-4, 3\\]'),
    (dict(out_indices=(-5,)), 'out_indices must be ints in \\[-4, 3\\]'),
    (dict(frozen_stages=5), 'frozen_stages must be in \\[-1, 4\\]'),
    (dict(arch=_custom([(40, 1), (64, 1)], {32: 1, 40: 3, 64: 2})),
     'stage 1, step 0: heads 3 do not divide width 40; give a divisor of 40, '
     'e.g. 1 \\(head dim 40\\)'),
    (dict(arch=_custom([(272, 1)], {32: 1, 272: 12}) | dict(channels=[32, 272])),
     'heads 12 do not divide width 272; give a divisor of 272, e.g. 8 '
     '\\(head dim 34\\)'),
    (dict(arch=_custom([(48, 1), (64, 1)], {32: 1, 64: 2})),
     'stage 1, step 0: no attention heads given for width 48'),
    (dict(arch=dict(channels=[32, 64], depths=[1, 1], steps=[[(32, 1)], [(64, 1)]])),
     "missing \\['heads'\\]"),
    (dict(arch=_custom([(64, 1)], [1, 2])), 'arch heads must map each step width'),
])
def test_bad_input_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StepsSwinTransformer(**kwargs)


def test_block_rejects_heads_not_dividing_width():
    with pytest.raises(ValueError, match='num_heads=5 must divide the width 96'):
        SwinBlock(96, 5)


def test_custom_arch_with_an_empty_last_step():
    arch = _custom([(16, 2), (48, 1), (64, 0)], {32: 2, 16: 1, 48: 3})
    model = StepsSwinTransformer(arch, window_size=3, out_indices=(0, 1),
                                 gap_before_final_norm=False)
    assert [len(s.blocks) for s in model.stages] == [1, 3]
    outs = model(torch.randn(1, 3, 36, 20))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 9, 5), (1, 64, 5, 3)]
