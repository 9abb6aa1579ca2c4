"""Crash-safe checkpoints for mmengine 0.10.

1. Atomic writes. mmengine's ``save_checkpoint`` serialises to memory and hands the
   bytes to the file backend of the path, which for local paths opens the final file
   and writes into it: a crash (SIGKILL, OOM, full disk) midway leaves a truncated
   ``iter_N.pth``. We register, for local paths, a ``LocalBackend`` whose ``put`` /
   ``put_text`` write a temporary file in the same directory, fsync it and
   ``os.replace`` it into place, so a checkpoint is either the old file or the new
   one. A backend rather than a ``CheckpointHook`` subclass: it needs no config
   change, so the stock configs and tools get it by importing ``steps_mm``
   (``custom_imports``), and it also covers ``save_checkpoint`` calls outside the hook.

2. Resuming past a bad checkpoint. ``resume=True`` (``--resume``) reads the
   ``last_checkpoint`` pointer and loads that file; a truncated file (from an older
   run, a full disk, a copy cut short) then fails deep inside ``torch.load``. We wrap
   the runner's ``find_latest_checkpoint``: when the pointer names a file that is not
   a complete checkpoint, it logs a warning naming the bad file and the newest
   complete ``iter_*.pth`` / ``epoch_*.pth`` in the work dir, and resumes from that
   one; when there is none, it raises with the bad file's path (starting from scratch
   silently would waste the run). An empty pointer (mmengine writes it with a plain
   ``open``) is handled the same way. An explicit ``--resume PATH`` is left as is.
"""
import glob
import logging
import os
import os.path as osp
import re
import tempfile
import zipfile
from typing import Optional

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log


# mkstemp makes 0600 files; give checkpoints the mode open() would (umask read once)
_UMASK = os.umask(0)
os.umask(_UMASK)


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` that writes to a temporary file, then renames it."""

    def put(self, obj: bytes, filepath) -> None:
        _atomic_write(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        _atomic_write(str(filepath), obj.encode(encoding))


def _atomic_write(filepath: str, data: bytes) -> None:
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    # same directory: os.replace is atomic only within one file system
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.',
                               suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file: a zip archive whose
    central directory can be read and whose members pass their CRC checks
    (cheaper than unpickling; a truncated file fails at the directory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def _step(path: str) -> int:
    # iter_N.pth / epoch_N.pth, not best_..._iter_N.pth
    match = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(path))
    return int(match.group(1)) if match else -1


def newest_complete_checkpoint(work_dir: str,
                               exclude: Optional[str] = None) -> Optional[str]:
    """The newest complete ``iter_*.pth`` / ``epoch_*.pth`` in ``work_dir``."""
    found = [p for p in glob.glob(osp.join(work_dir, '*.pth')) if _step(p) >= 0]
    for path in sorted(found, key=lambda p: (_step(p), osp.getmtime(p)),
                       reverse=True):
        if (exclude is None or osp.abspath(path) != osp.abspath(exclude)) \
                and is_complete_checkpoint(path):
            return path
    return None


def find_resumable_checkpoint(work_dir: str, _find_latest=None) -> Optional[str]:
    """``find_latest_checkpoint`` that checks the file the pointer names and falls
    back to the newest complete checkpoint (see the module docstring)."""
    from mmengine.runner.checkpoint import find_latest_checkpoint
    latest = (_find_latest or find_latest_checkpoint)(work_dir)
    # remote paths (s3://...) are left to mmengine
    if latest is None or '://' in latest or (latest and is_complete_checkpoint(latest)):
        return latest
    bad = latest or osp.join(work_dir, 'last_checkpoint') + ' (empty)'
    good = newest_complete_checkpoint(work_dir, exclude=latest)
    if good is None:
        raise RuntimeError(
            f'Cannot resume: the last checkpoint {bad} is missing or incomplete '
            f'(truncated?) and {work_dir} holds no other complete checkpoint. '
            'Delete it and its last_checkpoint pointer to start from scratch.')
    print_log(f'The last checkpoint {bad} is missing or incomplete (truncated?); '
              f'resuming from the newest complete checkpoint {good} instead.',
              logger='current', level=logging.WARNING)
    return good


def enable_crash_safety() -> None:
    """Atomic local writes and the checked resume (idempotent)."""
    from mmengine.fileio import io as fileio_io
    from mmengine.runner import runner as runner_module
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # get_file_backend caches instances; drop plain LocalBackends made before us
    for key, backend in list(fileio_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del fileio_io.backend_instances[key]
    # Runner.load_or_resume looks find_latest_checkpoint up in its module
    if not getattr(runner_module.find_latest_checkpoint, '_steps_mm', False):
        original = runner_module.find_latest_checkpoint

        def checked(path):
            return find_resumable_checkpoint(path, original)

        checked._steps_mm = True
        runner_module.find_latest_checkpoint = checked
