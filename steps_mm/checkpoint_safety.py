"""Let torch's ``weights_only`` loader read mmengine checkpoints.

The one process-wide change ``import steps_mm`` makes (docs/runtime.md): the stock
tools cannot resume or test an mmengine checkpoint under torch >= 2.6 without it,
and a user's own ``custom_imports`` replaces the shipped configs' list, so it cannot
be left to a config. It adds exactly ``mmengine_safe_globals()`` to torch's
allow-list and a ``copyreg`` reducer for ``HistoryBuffer``, nothing else.

torch >= 2.6 loads with ``weights_only=True``, which refuses any pickled global not
on its allow-list. mmengine 0.10 checkpoints hold numpy arrays and scalars inside the
message hub's ``HistoryBuffer`` objects. We allow exactly those types, so resume,
``load_from`` and ``tools/test.py CKPT`` work, while a checkpoint that pickles
anything else (``os.system``, say) is still refused by torch.

A ``HistoryBuffer`` also pickles its four default statistics methods, which protocol 2
writes as ``getattr(HistoryBuffer, 'min')``; allowing ``getattr`` would let a file
reach any attribute of an allowed type. So we pickle buffers without the defaults
(``HistoryBuffer.__setstate__`` restores them anyway).
"""
import copyreg

import numpy as np
import torch


def _numpy_globals() -> list:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    # numpy 2 rebuilds a dtype through its class (numpy.dtypes.Float64DType, ...)
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64)]
    return [_reconstruct, scalar, np.ndarray, np.dtype] + dtype_classes


def _reduce_history_buffer(buffer):
    from mmengine.logging import HistoryBuffer
    defaults = {name: getattr(HistoryBuffer, name)
                for name in ('min', 'max', 'current', 'mean')}
    state = {k: v for k, v in vars(buffer).items()
             if k not in ('statistics_methods', '_statistics_methods')}
    custom = {k: v for k, v in buffer._statistics_methods.items()
              if defaults.get(k) is not v}
    if custom:  # user-registered statistics travel as before
        state['statistics_methods'] = custom
    return HistoryBuffer, (), state


def mmengine_safe_globals() -> list:
    from mmengine.logging import HistoryBuffer
    return _numpy_globals() + [HistoryBuffer]


def allow_mmengine_checkpoints() -> bool:
    """Allow the types above in torch's ``weights_only`` loader and pickle
    ``HistoryBuffer`` without function references (idempotent). Returns False on a
    torch without ``add_safe_globals`` (< 2.4), which loads without restriction."""
    from mmengine.logging import HistoryBuffer
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return False
    allowed = set(map(id, torch.serialization.get_safe_globals()))
    add([g for g in mmengine_safe_globals() if id(g) not in allowed])
    return True
