"""Every family traces and exports: torch.fx.symbolic_trace, torch.export, both
ONNX exporters (TorchScript-based ``dynamo=False`` and ``dynamo=True``, run by
onnxruntime) and torch.compile reproduce the eager outputs of a tiny backbone, and
(slow) the ONNX exports of the real-size models too."""
import pytest
import torch
import torch.fx

from steps_mm.export import exported_outputs
from steps_mm.models import (StepsConvNeXt, StepsResNet, StepsSwinTransformer,
                             StepsViT)
from backbone_checks import assert_outputs_close
from fast_lane import sampled
from tiny_backbones import CASES, FAMILIES, make_input, tiny_backbone

EXPORTERS = ('legacy', 'dynamo')  # torch.onnx.export(dynamo=False / True)


def non_square_input(family):
    """Not a multiple of the tiny Swin's windows at every stage, nor of the ViT's
    patches: padding, cropping and position-embedding resizing are in the graph."""
    return make_input((1, 3, 40, 24) if family == 'deit' else (1, 3, 72, 104))


def eval_model(family, layout='steps'):
    torch.manual_seed(0)
    model, shape = tiny_backbone(family, layout)
    return model.eval(), make_input(shape)


@pytest.mark.parametrize('family, layout', CASES)
def test_fx_symbolic_trace(family, layout):
    model, x = eval_model(family, layout)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        assert_outputs_close(traced(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize('family', FAMILIES)
def test_torch_export(family):
    model, _ = eval_model(family)
    x = non_square_input(family)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        assert_outputs_close(program.module()(x), model(x), rtol=1e-5, atol=1e-6)


def onnx_outputs(model, x, exporter: str):
    """``model(x)`` exported by ``exporter`` and run by onnxruntime."""
    pytest.importorskip('onnxruntime')
    if exporter == 'dynamo':
        pytest.importorskip('onnxscript')  # the dynamo exporter's backend
    return exported_outputs(model, x, f'onnx-{exporter}')


# dynamo=True at tiny size runs in the slow lane (~30 s); the fast lane keeps the
# TorchScript exporter, mmdeploy's
@pytest.mark.parametrize('exporter', sampled(EXPORTERS, fast=lambda e: e == 'legacy'))
@pytest.mark.parametrize('family', FAMILIES)
def test_onnx_matches_onnxruntime(family, exporter):
    model, _ = eval_model(family)
    x = non_square_input(family)
    outs = onnx_outputs(model, x, exporter)
    with torch.no_grad():
        assert_outputs_close(outs, model(x), rtol=1e-4, atol=1e-5)


# the real archs, one input per family and exporter: 224x224 (ImageNet) for the
# legacy exporter, a detection-sized non-square input for the dynamo one
FULL_SIZE = {'convnext': (StepsConvNeXt, dict(arch='tiny')),
             'swin': (StepsSwinTransformer, dict(arch='tiny')),
             'resnet': (StepsResNet, dict(depth=50)),
             'deit': (StepsViT, dict(arch='deit-tiny', out_indices=(3, 7, 11)))}
INPUTS = {'legacy': (1, 3, 224, 224), 'dynamo': (1, 3, 512, 640)}


@pytest.mark.slow
@pytest.mark.parametrize('exporter', EXPORTERS)
@pytest.mark.parametrize('family', FAMILIES)
def test_full_size_onnx_matches_onnxruntime(family, exporter):
    backbone, kwargs = FULL_SIZE[family]
    torch.manual_seed(0)
    model = backbone(**kwargs).eval()
    x = make_input(INPUTS[exporter])
    outs = onnx_outputs(model, x, exporter)
    with torch.no_grad():
        expected = model(x)
    assert len(expected) == (3 if family == 'deit' else 4)
    assert_outputs_close(outs, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_compile_option_matches_eager():
    """``compile=True`` (a config key of every backbone) compiles the whole
    backbone at its first call and keeps the parameter names, so checkpoints
    load. Inference only: compiling the backward too would take this test from
    about 20 s to 50 s on 2 CPU cores."""
    eager, x = eval_model('deit')
    torch.manual_seed(0)
    compiled = tiny_backbone('deit', 'steps', compile=dict(dynamic=False))[0].eval()
    compiled.load_state_dict(eager.state_dict())
    with torch.no_grad():
        assert_outputs_close(compiled(x), eager(x), rtol=1e-4, atol=1e-5)
    assert compiled._compiled_call_impl is not None
