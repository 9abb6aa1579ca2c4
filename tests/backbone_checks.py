"""Checks every backbone family's tests share."""
import torch


def paired(actual, expected) -> list:
    """``list(zip(actual, expected))``, failing when the counts differ (a
    backbone that returns fewer outputs must not pass with less compared)."""
    actual, expected = list(actual), list(expected)
    assert len(actual) == len(expected), \
        f'{len(actual)} outputs against {len(expected)} expected'
    return list(zip(actual, expected))


def assert_outputs_close(actual, expected, **tol):
    """As many outputs as ``expected``, each close to its counterpart
    (``torch.testing.assert_close``; arrays, e.g. onnxruntime's, as tensors)."""
    for a, b in paired(actual, expected):
        torch.testing.assert_close(torch.as_tensor(a), b, **tol)


def assert_every_parameter_gets_a_gradient(model, x, loss=None):
    """Backward from ``loss(outputs)`` (default: the sum of output means) reaches
    every parameter with a non-zero gradient."""
    outs = model(x)
    (loss(outs) if loss else sum(o.mean() for o in outs)).backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def assert_checkpointing_changes_nothing(ref, with_cp, x):
    """``with_cp=True`` gives the outputs and gradients of the same weights
    without checkpointing."""
    with_cp.load_state_dict(ref.state_dict())
    out_ref, out_cp = ref(x), with_cp(x)
    assert_outputs_close(out_ref, out_cp)
    sum(o.square().mean() for o in out_ref).backward()
    sum(o.square().mean() for o in out_cp).backward()
    for (name, p), q in paired(ref.named_parameters(), with_cp.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
