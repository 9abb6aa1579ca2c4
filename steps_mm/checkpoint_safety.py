"""Let torch's ``weights_only`` loader read mmengine checkpoints.

torch >= 2.6 loads with ``weights_only=True``, which refuses any pickled global not
on its allow-list. mmengine 0.10 checkpoints hold numpy arrays and scalars (in the
message hub's history buffers) and mmengine's ``HistoryBuffer``; we allow exactly
those types, so resume, ``load_from`` and ``tools/test.py CKPT`` work, while a
checkpoint that pickles anything else (``os.system``, say) is still refused.
"""
import numpy as np
import torch


def _numpy_globals() -> list:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64, np.str_,
        np.object_)]
    return [_reconstruct, scalar, np.ndarray, np.dtype] + dtype_classes


def mmengine_safe_globals() -> list:
    from mmengine.logging import HistoryBuffer
    return _numpy_globals() + [HistoryBuffer]


def allow_mmengine_checkpoints() -> bool:
    """Add the types above to torch's ``weights_only`` allow-list (idempotent).
    Returns False on a torch without ``add_safe_globals`` (< 2.4), which does not
    need it."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return False
    allowed = set(map(id, torch.serialization.get_safe_globals()))
    add([g for g in mmengine_safe_globals() if id(g) not in allowed])
    return True
