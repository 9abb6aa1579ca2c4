"""The fast paths give what the plain ones give: fused attention against explicit
matmul + softmax (outputs, gradients, FLOP counts), the cached Swin shift mask,
the gathered bias table, and the Steps stage's split/concat plan."""
import pytest
import torch
import torch.fx
import torch.nn.functional as F

from steps_mm.analysis import count_flops
from steps_mm.models import StepsImageClassifier
from steps_mm.models.blocks import swin as swin_blocks
from steps_mm.models.layers import attention, explicit_attention
from steps_mm.models.steps import StepsStage
from backbone_checks import assert_outputs_close, paired
from tiny_backbones import HEADS, HIERARCHICAL, make_input, tiny_backbone

LAYOUTS = ('sequential', 'steps', 'parallel')


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the calls of the fused kernel (``F.scaled_dot_product_attention``),
    so that a test comparing the two paths knows both ran."""
    calls = []
    fused = F.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(1)
        return fused(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', counted)
    return calls


def outputs_and_grads(model, x, explicit: bool):
    with explicit_attention(explicit):
        outs = model(x)
        loss = sum((o * torch.linspace(-1, 1, o.numel()).view(o.shape)).sum()
                   for o in outs)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params)
    return outs, grads


@pytest.mark.parametrize('family', ['swin', 'deit'])
@pytest.mark.parametrize('layout', LAYOUTS)
def test_fused_and_explicit_attention_agree_in_training(family, layout, fused_calls):
    """Training mode, gradients of every trained parameter. Swin's bias tables
    are frozen: on a CPU a mask that needs a gradient takes the explicit path
    in both runs (``layers.attention``), which would compare it with itself."""
    torch.manual_seed(0)
    model, shape = tiny_backbone(family, layout)
    model.train()
    for name, p in model.named_parameters():
        if 'relative_position_bias_table' in name:
            p.requires_grad_(False)
    x = make_input(shape)
    fused, fused_grads = outputs_and_grads(model, x, explicit=False)
    assert fused_calls, 'the fused kernel did not run'
    del fused_calls[:]
    plain, plain_grads = outputs_and_grads(model, x, explicit=True)
    assert not fused_calls
    assert_outputs_close(fused, plain, rtol=1e-4, atol=1e-5)
    assert_outputs_close(fused_grads, plain_grads, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('family', ['swin', 'deit'])
def test_fused_and_explicit_agree_in_eval(family, fused_calls):
    """Inference (the bias tables stay trainable: no gradient is taken)."""
    model, shape = tiny_backbone(family, 'steps')
    model.eval()
    x = make_input(shape)
    with torch.no_grad():
        fused = model(x)
        assert fused_calls, 'the fused kernel did not run'
        count = len(fused_calls)
        with explicit_attention():
            plain = model(x)
        assert len(fused_calls) == count
    assert_outputs_close(fused, plain, rtol=1e-4, atol=1e-5)


def test_trainable_bias_trains_on_the_explicit_path_on_cpu(fused_calls):
    """The one case without the fused kernel, by design (measured faster)."""
    model, shape = tiny_backbone('swin', 'steps')
    model.train()
    outputs_and_grads(model, make_input(shape), explicit=False)
    assert not fused_calls


@pytest.mark.parametrize('windows', [1, 4])
def test_attention_function_paths(windows):
    """A mask per window (Swin's batch is images x windows) or one for all."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2 * windows, 3, 5, 4, generator=g, requires_grad=True)
               for _ in range(3))
    mask = torch.randn(windows, 3, 5, 5, generator=g)
    fused = attention(q, k, v, mask)
    with explicit_attention():
        plain = attention(q, k, v, mask)
    direct = ((q @ k.transpose(-2, -1)) / 2 + mask.repeat(2, 1, 1, 1)).softmax(-1) @ v
    torch.testing.assert_close(fused, direct)
    torch.testing.assert_close(plain, direct)
    grads = [torch.autograd.grad(out.sum(), (q, k, v)) for out in (fused, plain)]
    assert_outputs_close(*grads)


@pytest.mark.parametrize('family', ['swin', 'deit'])
def test_flop_count_is_the_same_on_both_paths(family):
    """The fused op is counted as its two matmuls (``analysis.flops``)."""
    if family == 'swin':
        backbone = dict(type='StepsSwinTransformer', window_size=2,
                        arch=dict(HIERARCHICAL, heads=HEADS))
    else:
        backbone = dict(type='StepsViT', img_size=32, patch_size=8,
                        arch=dict(channels=[32], depths=[4], heads=HEADS,
                                  steps=[[(16, 2), (24, 1), (32, 1)]]))
    model = StepsImageClassifier(backbone, num_classes=10)
    size = (32, 32)
    fused = count_flops(model, size)
    with explicit_attention():
        plain = count_flops(model, size)
    assert fused == plain > 0


def test_shift_mask_built_once_per_size(monkeypatch):
    calls = []
    build = swin_blocks.shifted_window_mask
    monkeypatch.setattr(swin_blocks, 'shifted_window_mask',
                        lambda *a, **k: calls.append(a[:4]) or build(*a, **k))
    monkeypatch.setattr(swin_blocks, '_MASKS', {})
    model, shape = tiny_backbone('swin', 'steps')
    model.eval()
    with torch.no_grad():
        model(make_input(shape))
        model(make_input(shape))
    shifted = [(i, len(stage.blocks)) for i, stage in enumerate(model.stages)
               if any(b.attn.shift_size for b in stage.blocks)]
    # one mask per map size (64x64 input: 16, 8, 4, 2 with window 2), whatever
    # the number of shifted blocks and calls
    assert len(calls) == len(set(calls)) == len(shifted)


def test_shift_mask_matches_a_fresh_one():
    swin_blocks._MASKS.clear()
    a = swin_blocks.cached_shifted_window_mask(14, 21, 7, 3, torch.device('cpu'))
    assert swin_blocks.cached_shifted_window_mask(14, 21, 7, 3, 'cpu') is a
    torch.testing.assert_close(a, swin_blocks.shifted_window_mask(14, 21, 7, 3))


def test_relative_position_bias_gather():
    msa = swin_blocks.WindowMSA(12, 3, 4)
    table, index = msa.relative_position_bias_table, msa.relative_position_index
    torch.testing.assert_close(msa.relative_position_bias(),
                               table[index].permute(2, 0, 1), rtol=0, atol=0)


@pytest.mark.parametrize('spec, cats', [
    ([(8, 3)], 0),
    ([(2, 2), (4, 1), (8, 2)], 2),
    ([(2, 0), (4, 1), (6, 0), (7, 0), (8, 1)], 1),
    ([(3, 2), (8, 0)], 1),
])
def test_stage_splits_once_and_cats_once_per_step(spec, cats):
    stage = StepsStage(spec, lambda w, k: torch.nn.Linear(w, w), channel_dim=-1)
    graph = torch.fx.symbolic_trace(stage).graph
    targets = [n.target for n in graph.nodes]
    assert targets.count(torch.cat) == cats
    assert targets.count('split') == (1 if cats else 0)


@pytest.mark.parametrize('family', ['convnext', 'resnet'])
def test_channels_last_option(family):
    torch.manual_seed(0)
    plain, shape = tiny_backbone(family, 'steps')
    fast = tiny_backbone(family, 'steps', channels_last=True)[0]
    fast.load_state_dict(plain.state_dict())
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in fast.parameters() if p.ndim == 4)
    x = make_input(shape)
    plain.eval(), fast.eval()
    with torch.no_grad():
        for a, b in paired(fast(x), plain(x)):
            assert a.is_contiguous()  # NCHW out: see the test below
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('family, channels_last', [
    ('convnext', False), ('convnext', True), ('swin', False), ('resnet', True),
    ('deit', False)])
def test_roi_align_reads_the_outputs_right(family, channels_last):
    """mmcv's RoIAlign (Mask R-CNN's RoI heads) reads its input as NCHW memory:
    on the NHWC strides that LayerNorm over channels, channels-last convs and
    ViT's token grid leave, it pools the wrong values without an error (and the
    detector learns nothing). Every output must pool as its contiguous copy."""
    from mmcv.ops import roi_align
    options = dict(channels_last=True) if channels_last else {}
    model, shape = tiny_backbone(family, 'steps', **options)
    x = make_input(shape)
    rois = torch.tensor([[0, 2., 3., 20., 29.], [1, 8., 1., 31., 17.]])
    with torch.no_grad():
        outs = model.eval()(x)
    for out in outs:
        assert out.is_contiguous()
        scale = out.shape[-1] / shape[-1]
        torch.testing.assert_close(
            roi_align(out, rois, (3, 3), scale, 0, 'avg', True),
            roi_align(out.clone(memory_format=torch.contiguous_format), rois, (3, 3),
                      scale, 0, 'avg', True))
