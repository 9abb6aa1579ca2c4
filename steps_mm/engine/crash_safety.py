"""Crash-safe checkpoints for mmengine 0.10, opted into by a config with

    runner_type = 'steps_mm.CrashSafeRunner'

(every config under ``configs/`` sets it, so ``mim train`` / ``mim test`` and the
stock ``tools/train.py`` / ``tools/test.py`` get it). ``import steps_mm`` alone
changes nothing: the features below live in this runner, for the runs built from
such a config, and replace no mmengine function, backend or setting.

1. Atomic checkpoint writes. mmengine's ``save_checkpoint`` serialises to memory
   and writes the bytes into the final file: a crash (SIGKILL, OOM, full disk)
   midway leaves a truncated ``iter_N.pth``. ``CrashSafeRunner.save_checkpoint``
   lets mmengine write a hidden temporary file in the same directory
   (``.iter_N.pth.<pid>.tmp``, created by ``open`` as any file, so it has the mode
   the umask gives), fsyncs it and ``os.replace``-s it into place: a checkpoint is
   the old file or the new one, never a part. Remote outputs (``backend_args``,
   ``file_client_args``, ``s3://...``) are written by mmengine as before. The
   ``last_checkpoint`` pointer is still written by mmengine's ``CheckpointHook``;
   a pointer cut short is handled by 2.

2. Resuming past a bad checkpoint. ``resume=True`` (``--resume``) reads the
   ``last_checkpoint`` pointer and loads that file; a truncated file (from an
   older run, a full disk, a copy cut short) would fail deep inside ``torch.load``.
   ``CrashSafeRunner.load_or_resume`` checks the file the pointer names: when it is
   not a complete checkpoint (or the pointer is empty) it logs a warning naming
   the bad file and the newest complete ``iter_*.pth`` / ``epoch_*.pth`` of the
   work dir, and resumes from that one; when there is none, it raises with the
   bad file's path (starting from scratch silently would waste the run). An
   explicit ``--resume PATH`` (``load_from``) is loaded as given.
"""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import Optional

from mmengine.dist import master_only
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..registry import RUNNERS


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


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """mmengine's ``find_latest_checkpoint``, checked: the file the pointer names
    if it is complete, else the newest complete checkpoint (with a warning), else
    a RuntimeError. None when the work dir has no pointer (a fresh run)."""
    from mmengine.runner.checkpoint import find_latest_checkpoint
    latest = find_latest_checkpoint(work_dir)
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


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY if osp.isdir(path) else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: str, path: str) -> None:
    """Move the finished file ``tmp`` to ``path`` (same directory): its data is on
    disk before the name points at it, and the rename is atomic."""
    _fsync(tmp)
    os.replace(tmp, path)
    if os.name == 'posix':  # the rename itself survives a power cut
        _fsync(osp.dirname(osp.abspath(path)))


@RUNNERS.register_module()
class CrashSafeRunner(Runner):
    """mmengine's ``Runner`` with atomic checkpoint writes and a resume that
    skips a truncated last checkpoint (see the module docstring)."""

    @master_only  # as mmengine's: one process writes
    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None, by_epoch: bool = True,
                        backend_args: Optional[dict] = None):
        options = dict(save_optimizer=save_optimizer,
                       save_param_scheduler=save_param_scheduler, meta=meta,
                       by_epoch=by_epoch)
        if file_client_args is not None or backend_args is not None \
                or '://' in str(out_dir):
            return super().save_checkpoint(out_dir, filename, file_client_args,
                                           backend_args=backend_args, **options)
        # same directory: os.replace is atomic only within one file system
        tmp_name = f'.{filename}.{os.getpid()}.tmp'
        tmp = osp.join(out_dir, tmp_name)
        try:
            super().save_checkpoint(out_dir, tmp_name, **options)
            replace_durably(tmp, osp.join(out_dir, filename))
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    def load_or_resume(self) -> None:
        if not self._has_loaded and self._resume and self._load_from is None:
            checkpoint = find_resumable_checkpoint(self.work_dir)
            if checkpoint is not None:
                self.logger.info(f'Auto resumed from the latest checkpoint '
                                 f'{checkpoint}.')
                self.resume(checkpoint)
                self._has_loaded = True
                return
        super().load_or_resume()
