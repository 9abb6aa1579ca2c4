"""Checks every backbone family's tests share."""
import torch


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
    for a, b in zip(out_ref, out_cp):
        torch.testing.assert_close(a, b)
    sum(o.square().mean() for o in out_ref).backward()
    sum(o.square().mean() for o in out_cp).backward()
    for (name, p), q in zip(ref.named_parameters(), with_cp.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
