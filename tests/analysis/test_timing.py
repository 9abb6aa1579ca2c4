"""steps_mm.analysis.timing (behind tools/benchmark.py and tools/gpu_hours.py):
interleaved medians and the op categories of the breakdown. No timing is
asserted."""
import pytest

from steps_mm.analysis import timing


def test_interleaved_medians_time_each_step_in_turn():
    calls = []
    medians = timing.interleaved_medians(
        {'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')},
        repeats=3, warmup=1, iters=2)
    assert calls == ['a', 'b'] + ['a', 'a', 'b', 'b'] * 3
    assert set(medians) == {'a', 'b'} and all(m >= 0 for m in medians.values())


@pytest.mark.parametrize('op, category', [
    ('aten::mm', 'matmul & conv'), ('aten::convolution_backward', 'matmul & conv'),
    ('aten::_scaled_dot_product_flash_attention_for_cpu', 'attention'),
    ('aten::_softmax_backward_data', 'attention'), ('aten::cat', 'copies & layout'),
    ('aten::copy_', 'copies & layout'), ('aten::native_layer_norm_backward', 'norms'),
    ('aten::native_batch_norm', 'norms'), ('aten::gelu', 'activations & elementwise'),
    ('aten::add_', 'activations & elementwise')])
def test_op_categories(op, category):
    assert timing.op_category(op) == category
