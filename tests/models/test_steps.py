"""The generic Steps mechanism against a direct implementation of its formula."""
import pytest
import torch
import torch.nn as nn

from steps_mm.models.steps import ResidualBlock, StepsStage, validate_spec
from backbone_checks import paired


class AffineBlock(ResidualBlock):
    """x + tanh(W x) over the channel dim: cheap, width-preserving, non-linear."""

    def __init__(self, width, channel_dim=1):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.channel_dim = channel_dim
        self.inputs = []

    def residual(self, x):
        self.inputs.append(x)
        x = x.movedim(self.channel_dim, -1)
        return torch.tanh(self.linear(x)).movedim(-1, self.channel_dim)


def make_stage(spec, channel_dim=1, **kwargs):
    torch.manual_seed(0)
    return StepsStage(spec, lambda width, k: AffineBlock(width, channel_dim),
                      channel_dim=channel_dim, **kwargs)


def reference(stage, x, dim=1):
    """y_1 = F_1(x_1), y_i = F_i(cat(y_{i-1}, x_i)), written out directly."""
    blocks = iter(stage)
    y = None
    for width, depth in stage.spec:
        prev = 0 if y is None else y.size(dim)
        part = x.narrow(dim, prev, width - prev)
        y = part if y is None else torch.cat([y, part], dim)
        for _ in range(depth):
            y = next(blocks)(y)
    return y


@pytest.mark.parametrize('spec', [
    [(8, 3)],
    [(2, 2), (4, 1), (8, 2)],
    [(2, 0), (4, 1), (6, 0), (7, 0), (8, 1)],
    [(3, 2), (8, 0)],
    [(8, 0)],
])
@pytest.mark.parametrize('dim', [1, -1])
def test_matches_formula(spec, dim):
    stage = make_stage(spec, channel_dim=dim)
    x = torch.randn(2, 8, 5, 3) if dim == 1 else torch.randn(2, 5, 8)
    out = stage(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, reference(stage, x, dim))
    assert len(stage) == sum(d for _, d in spec)


def test_one_step_is_the_residual_stack():
    stage = make_stage([(8, 4)])
    x = torch.randn(2, 8, 3, 3)
    y = x
    for block in stage:
        y = y + block.residual(y)
    torch.testing.assert_close(stage(x), y)


def test_first_step_reads_a_view_not_a_copy():
    stage = make_stage([(4, 1), (8, 1)])
    x = torch.randn(2, 8, 3, 3)
    stage(x)
    first_input = stage[0].inputs[0]
    assert first_input.data_ptr() == x.data_ptr()  # narrow, not copied
    assert first_input.shape[1] == 4
    # a sequential stage hands the input itself to its first block
    seq = make_stage([(8, 2)])
    seq(x)
    assert seq[0].inputs[0].data_ptr() == x.data_ptr()


def test_parallel_sums_residual_branches():
    stage = make_stage([(8, 3)], parallel=True)
    x = torch.randn(2, 8, 3, 3)
    expected = x + sum(block.residual(x) for block in stage)
    torch.testing.assert_close(stage(x), expected)
    # ... which differs from the sequential composition of the same blocks
    sequential = make_stage([(8, 3)])
    assert not torch.allclose(sequential(x), stage(x))


def test_parallel_needs_residual_blocks():
    with pytest.raises(TypeError, match='ResidualBlock'):
        StepsStage([(4, 2)], lambda w, k: nn.Identity(), parallel=True)


@pytest.mark.parametrize('parallel', [False, True])
def test_checkpointing_gives_same_outputs_and_grads(parallel):
    spec = [(2, 1), (4, 2), (8, 1)] if not parallel else [(8, 3)]
    plain, ckpt = make_stage(spec, parallel=parallel), make_stage(
        spec, parallel=parallel, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 8, 3, 3, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    plain(x).square().sum().backward()
    ckpt(x2).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    for p, q in paired(plain.parameters(), ckpt.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_wrong_input_width():
    stage = make_stage([(4, 1), (8, 1)])
    with pytest.raises(ValueError, match='expects 8 channels'):
        stage(torch.randn(1, 6, 2, 2))


@pytest.mark.parametrize('spec, message', [
    ([(4, 1), (4, 1), (8, 1)], 'strictly increasing'),
    ([(6, 1), (4, 1), (8, 1)], 'strictly increasing'),
    ([(4, 1), (6, 1)], 'last step width must equal the stage width 8'),
    ([(4, -1), (8, 1)], 'depth must be >= 0'),
    ([], 'no steps'),
    ([(4.0, 1), (8, 1)], 'must be ints'),
    ([(0, 1), (8, 1)], 'width must be positive'),
    ([4, 8], 'list of \\(width, depth\\) pairs'),
])
def test_invalid_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        validate_spec(spec, 8, 'test stage')


def test_width_check_names_the_step():
    check = lambda w: None if w % 3 == 0 else f'heads 3 do not divide width {w}'
    assert validate_spec([(3, 1), (6, 1)], 6, check_width=check) == [(3, 1), (6, 1)]
    with pytest.raises(ValueError, match='step 1: heads 3 do not divide width 5'):
        validate_spec([(3, 1), (5, 1), (6, 1)], 6, check_width=check)
    # a step with no blocks builds nothing, so its width is not checked
    validate_spec([(3, 1), (5, 0), (6, 1)], 6, check_width=check)
