"""Results tables from finished runs: read what ``mim train`` / ``mim test`` left in
work dirs (``workdir``), pair each Steps run with its baseline twin (``twins``),
collect the paper's tables with every figure's source (``report``), write them as
Markdown, CSV and JSON (``output``) and into the model index (``metafile``)."""
from .output import markdown, write
from .tables import FlopCounter, build_tables
from .workdir import ResultsError, read_run, read_runs

__all__ = ['FlopCounter', 'ResultsError', 'build_tables', 'markdown', 'read_run',
           'read_runs', 'write']
