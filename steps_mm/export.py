"""Run a model through the export paths and compare with eager PyTorch: the
TorchScript-based ONNX exporter (``dynamo=False``, mmdeploy's), the dynamo ONNX
exporter (both run by onnxruntime), ``torch.export`` and ``torch.fx``.

The exported graphs are specialised to the input size (padding to the Swin
windows, the shift masks, the ViT position embedding's grid): export at the size
you will run.
"""
import io
import time
from typing import List, Sequence

import torch
import torch.fx
import torch.nn as nn

PATHS = ('onnx-legacy', 'onnx-dynamo', 'torch.export', 'fx')


def exported_outputs(model: nn.Module, x: torch.Tensor, path: str) -> List[torch.Tensor]:
    """The outputs of ``model`` (in eval mode) on ``x`` through ``path``."""
    if path in ('onnx-legacy', 'onnx-dynamo'):
        import onnxruntime as ort
        if path == 'onnx-legacy':
            buffer = io.BytesIO()
            torch.onnx.export(model, (x,), buffer, opset_version=17, dynamo=False)
            data = buffer.getvalue()
        else:
            data = torch.onnx.export(model, (x,), dynamo=True, verbose=False
                                     ).model_proto.SerializeToString()
        session = ort.InferenceSession(data, providers=['CPUExecutionProvider'])
        outs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    elif path == 'torch.export':
        outs = torch.export.export(model, (x,)).module()(x)
    elif path == 'fx':
        with torch.no_grad():
            outs = torch.fx.symbolic_trace(model)(x)
    else:
        raise ValueError(f'unknown export path {path!r}; choose from {PATHS}')
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [torch.as_tensor(o).detach() for o in outs]


def export_errors(model: nn.Module, x: torch.Tensor,
                  paths: Sequence[str] = PATHS, progress=None) -> dict:
    """``{path: (max abs difference from eager over all outputs, seconds)}``."""
    model.eval()
    with torch.no_grad():
        expected = model(x)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    errors = {}
    for path in paths:
        start = time.perf_counter()
        outs = exported_outputs(model, x, path)
        if len(outs) != len(expected):
            raise AssertionError(f'{path}: {len(outs)} outputs, eager gives '
                                 f'{len(expected)}')
        errors[path] = (max(float((o - e).abs().max()) for o, e in zip(outs, expected)),
                        time.perf_counter() - start)
        if progress:
            progress(path, *errors[path])
    return errors
