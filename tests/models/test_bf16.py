"""Every backbone family and layout trains under CPU bf16 autocast: forward and
backward run, outputs and gradients are finite and close to fp32."""
import pytest
import torch

from backbone_checks import paired
from tiny_backbones import CASES, make_input, tiny_backbone

# Tolerances on ||bf16 - fp32|| / ||fp32||. bf16 keeps 8 significant bits (a
# rounding error of 2^-9 = 0.2% per op); autocast runs convs, linears and matmuls
# in bf16, so errors of about 1% after the ~20 ops of these models are expected
# (measured: outputs <= 1%, gradients <= 1% for ConvNeXt, Swin and ViT). 3% catches
# an op that runs at the wrong precision or overflows without flaking.
# ResNet (BatchNorm, frozen statistics as in mmdet's recipe): outputs <= 0.7% but
# whole-model gradients about 7% (single BN parameters up to 15%), measured on
# Steps-ResNet-18 in every layout; hence its looser gradient tolerance.
OUT_TOL = 0.03
GRAD_TOL = {'convnext': 0.03, 'swin': 0.03, 'deit': 0.03, 'resnet': 0.15}


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def forward_backward(model, x, weights, bf16: bool):
    model.zero_grad()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        outs = model(x)
    # random weights: a plain sum has ~0 gradient through normalisation layers
    sum((out.float() * w).sum() for out, w in zip(outs, weights)).backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters()
                       if p.grad is not None])
    return [out.detach() for out in outs], grads


@pytest.mark.parametrize('family,layout', CASES)
def test_bf16_autocast_forward_backward(family, layout):
    torch.manual_seed(0)
    # ConvNeXt with layer scale 1 as the configs (1e-6 makes its blocks identities)
    kwargs = dict(norm_eval=True) if family == 'resnet' else \
        dict(layer_scale_init_value=1.) if family == 'convnext' else {}
    model, shape = tiny_backbone(family, layout, **kwargs)
    model.train()
    x = make_input(shape)
    with torch.no_grad():
        weights = [make_input(out.shape, seed=1 + i) for i, out in enumerate(model(x))]
    outs32, grads32 = forward_backward(model, x, weights, bf16=False)
    outs16, grads16 = forward_backward(model, x, weights, bf16=True)
    assert all(torch.isfinite(out).all() for out in outs16)
    assert torch.isfinite(grads16).all()
    assert grads16.shape == grads32.shape  # every parameter got a gradient
    errors = [rel_error(a, b) for a, b in paired(outs16, outs32)]
    assert max(errors) < OUT_TOL, errors
    assert rel_error(grads16, grads32) < GRAD_TOL[family], rel_error(grads16, grads32)
