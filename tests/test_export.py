"""Every family traces and exports: torch.fx.symbolic_trace, torch.export, ONNX
(run by onnxruntime) and torch.compile reproduce the eager outputs of a tiny
backbone."""
import pytest
import torch
import torch.fx

from tiny_backbones import CASES, FAMILIES, make_input, tiny_backbone


def eval_model(family, layout='steps'):
    torch.manual_seed(0)
    model, shape = tiny_backbone(family, layout)
    return model.eval(), make_input(shape)


def assert_outputs_close(actual, expected, **tol):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        torch.testing.assert_close(torch.as_tensor(a), b, **tol)


@pytest.mark.parametrize('family, layout', CASES)
def test_fx_symbolic_trace(family, layout):
    model, x = eval_model(family, layout)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        assert_outputs_close(traced(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize('family', FAMILIES)
def test_torch_export(family):
    model, x = eval_model(family)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        assert_outputs_close(program.module()(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('family', FAMILIES)
def test_onnx_matches_onnxruntime(family, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')  # the exporter of torch.onnx.export
    model, x = eval_model(family)
    path = str(tmp_path / f'{family}.onnx')
    torch.onnx.export(model, (x,), path, dynamo=True, verbose=False)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert_outputs_close(outs, model(x), rtol=1e-4, atol=1e-5)


def test_compile_option_matches_eager():
    """``compile=True`` (a config key of every backbone) compiles the whole
    backbone at its first call and keeps the parameter names, so checkpoints
    load. Inference only: compiling the backward too would take this test from
    about 20 s to 50 s on 2 CPU cores."""
    eager, x = eval_model('vit')
    torch.manual_seed(0)
    compiled = tiny_backbone('vit', 'steps', compile=dict(dynamic=False))[0].eval()
    compiled.load_state_dict(eager.state_dict())
    with torch.no_grad():
        assert_outputs_close(compiled(x), eager(x), rtol=1e-4, atol=1e-5)
    assert compiled._compiled_call_impl is not None
