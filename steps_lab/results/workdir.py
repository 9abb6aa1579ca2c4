"""What ``mim train`` / ``mim test`` leave in a work dir, read back.

mmengine's Runner writes one folder per session, named by its start time
(``WORK_DIR/20240101_120000/``): the session's log (``<ts>.log``), the config it ran
(``vis_data/config.py``), the training scalars (``vis_data/scalars.json``, one JSON
row per logged iteration or validation) and, after a test, the test metrics
(``<ts>.json``, written by ``LoggerHook.after_test_epoch``, with the epoch's mean
iteration ``time`` and ``data_time``). A test session's config names the checkpoint
it measured (``load_from``, set by the tools' ``--checkpoint``).

A *run* is one work dir given by the user: its newest training session and its test
sessions, found in the dir itself or one level down (the demo keeps ``train/`` and
``test/`` apart; the stock tools share ``work_dirs/<config>/``).
"""
import glob
import json
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from mmengine.config import Config

TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


class ResultsError(RuntimeError):
    """A work dir lacks what a results table needs; the message names the dir."""


@dataclass
class Session:
    """One Runner session: its folder, config and (for a test) its metrics."""
    dir: str
    config_file: str
    metrics_file: Optional[str] = None  # <ts>.json of a test session
    scalars_file: Optional[str] = None  # vis_data/scalars.json
    _config: Optional[Config] = field(default=None, repr=False)

    @property
    def timestamp(self) -> str:
        return osp.basename(self.dir)

    @property
    def log_file(self) -> str:
        return osp.join(self.dir, self.timestamp + '.log')

    @property
    def config(self) -> Config:
        if self._config is None:
            # the dump is self-contained; its custom_imports (steps_mm) register
            # the backbones when a model is built from it
            self._config = Config.fromfile(self.config_file, import_custom_modules=False)
        return self._config

    @property
    def metrics(self) -> Dict[str, float]:
        with open(self.metrics_file) as f:
            return json.load(f)

    @property
    def checkpoint(self) -> Optional[str]:
        """The checkpoint the session loaded; a relative path (relative to where
        the tool ran) is looked up from the session's folder upwards, then from
        the current dir, and kept as written when not found."""
        path = self.config.get('load_from')
        if not path or osp.isabs(path) or '://' in path:
            return path
        folder = self.dir
        while True:
            if osp.exists(osp.join(folder, path)):
                return osp.join(folder, path)
            if osp.dirname(folder) == folder:
                break
            folder = osp.dirname(folder)
        return osp.abspath(path) if osp.exists(path) else path

    def scalars(self) -> List[Dict]:
        if not self.scalars_file or not osp.exists(self.scalars_file):
            return []
        with open(self.scalars_file) as f:
            return [json.loads(line) for line in f if line.strip()]

    @property
    def is_training(self) -> bool:
        return any('loss' in row for row in self.scalars())

    @property
    def is_multi_scale(self) -> bool:
        """A test-time-augmentation run (the tools' ``--tta`` swaps the model for
        the codebase's ``*TTAModel``): mmseg's multi-scale (+flip) mIoU."""
        return str(self.config.model.get('type', '')).endswith('TTAModel')


def find_sessions(work_dir: str) -> List[Session]:
    """The Runner sessions in ``work_dir`` and one level below, oldest first."""
    sessions = []
    for pattern in ('*', osp.join('*', '*')):
        for path in glob.glob(osp.join(work_dir, pattern)):
            name = osp.basename(path)
            config = osp.join(path, 'vis_data', 'config.py')
            if not (TIMESTAMP.match(name) and osp.isdir(path) and osp.exists(config)):
                continue
            metrics = osp.join(path, name + '.json')
            sessions.append(Session(
                dir=path, config_file=config,
                metrics_file=metrics if osp.exists(metrics) else None,
                scalars_file=osp.join(path, 'vis_data', 'scalars.json')))
    return sorted(sessions, key=lambda s: (s.timestamp, s.dir))


@dataclass
class Run:
    """A work dir: its newest training session (if any) and its test sessions."""
    work_dir: str
    train: Optional[Session]
    tests: List[Session]

    @property
    def config(self) -> Config:
        """The training config (the config of the newest test without one)."""
        return (self.train or self.tests[-1]).config

    @property
    def scope(self) -> str:
        return self.config.get('default_scope')

    def test(self, multi_scale: bool = False) -> Optional[Session]:
        """The newest test session, single-scale or multi-scale."""
        found = [s for s in self.tests if s.is_multi_scale == multi_scale]
        return found[-1] if found else None

    def curve(self, key: str = 'loss') -> List[tuple]:
        """``(iteration, value)`` of the training scalars (mmpretrain logs epochs
        too; ``step`` is the iteration either way)."""
        rows = self.train.scalars() if self.train else []
        return [(r.get('iter', r.get('step')), r[key]) for r in rows if key in r]


def read_run(work_dir: str) -> Run:
    """The run in ``work_dir``; raises ``ResultsError`` naming the dir when it
    holds no mmengine session or no test result."""
    work_dir = osp.abspath(work_dir)
    if not osp.isdir(work_dir):
        raise ResultsError(f'{work_dir}: no such directory')
    sessions = find_sessions(work_dir)
    if not sessions:
        raise ResultsError(
            f'{work_dir}: no mmengine session (no <timestamp>/vis_data/config.py here '
            f'or one level down); give the --work-dir of a mim train / mim test run')
    trains = [s for s in sessions if s.is_training]
    tests = [s for s in sessions if s.metrics_file]
    if not tests:
        codebase, checkpoint = '<codebase>', 'CHECKPOINT'
        if trains:
            codebase = trains[-1].config.get('default_scope', codebase)
            last = osp.join(osp.dirname(trains[-1].dir), 'last_checkpoint')
            if osp.exists(last):
                with open(last) as f:
                    checkpoint = f.read().strip()
        raise ResultsError(
            f'{work_dir}: no test result (no <timestamp>/<timestamp>.json, which '
            f'mim test writes); test the trained checkpoint into this dir: '
            f'mim test {codebase} CONFIG --checkpoint {checkpoint} --work-dir {work_dir}')
    return Run(work_dir=work_dir, train=trains[-1] if trains else None, tests=tests)


def read_runs(work_dirs: List[str]) -> List[Run]:
    """Every run, or one ``ResultsError`` naming each dir that is unusable."""
    runs, problems = [], []
    for work_dir in work_dirs:
        try:
            runs.append(read_run(work_dir))
        except ResultsError as error:
            problems.append(str(error))
    if problems:
        raise ResultsError('\n'.join(problems))
    return runs
