#!/usr/bin/env bash
# Install steps_mm and its tested matrix into the current Python environment.
# Idempotent: when everything is present it only checks (a few seconds).
# First install on 2 CPU cores: about 20 minutes, nearly all of it building mmcv's
# compiled ops (pip caches the wheel, so later installs are fast).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
PIP=("$PY" -m pip install --disable-pip-version-check)

# present NAME[==VERSION] ...: every distribution is installed (at that version)
present() {
  "$PY" - "$@" <<'PYEOF'
import importlib.metadata as m, sys
for req in sys.argv[1:]:
    name, _, want = req.partition('==')
    try:
        have = m.version(name)
    except m.PackageNotFoundError:
        sys.exit(1)
    if want and have.split('+')[0] != want:
        sys.exit(1)
PYEOF
}
say() { echo "[install] $*"; }

# mmcv's build needs these first; setuptools>=82 drops pkg_resources (mmcv, mim).
if ! present torch==2.13.0 wheel ninja || ! "$PY" -c \
    "import setuptools as s, sys; v = tuple(map(int, s.__version__.split('.')[:2])); sys.exit(not (77, 0) <= v < (82, 0))"; then
  say "torch 2.13.0 (CPU build on this machine), wheel, ninja, setuptools>=77,<82"
  "${PIP[@]}" torch==2.13.0 wheel ninja "setuptools>=77,<82"
fi
if ! present mmcv==2.1.0 || ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
  say "mmcv 2.1.0 with compiled ops: building from source (~20 min on 2 cores, cached after)"
  "${PIP[@]}" --no-build-isolation mmcv==2.1.0
fi
DEPS=(mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 pycocotools ftfy regex
      scikit-image matplotlib pytest mlxtend
      onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2)  # tests/test_export.py
if ! present "${DEPS[@]}"; then
  say "mmengine, mmdet, mmseg and what they import without declaring"
  "${PIP[@]}" "${DEPS[@]}" "setuptools>=77,<82"
fi
# openmim's own requirements downgrade setuptools: install it without them.
MIM_DEPS=(click colorama model-index pandas requests rich tabulate)
if ! present openmim==0.3.9 "${MIM_DEPS[@]}"; then
  say "openmim 0.3.9 (mim)"
  "${PIP[@]}" --no-deps openmim==0.3.9
  "${PIP[@]}" "${MIM_DEPS[@]}" "setuptools>=77,<82"
fi
# ImageNet pretraining (configs/imagenet/): mmpretrain's requirements pull in
# packages the det/seg matrix does not need; install it with its real imports.
PRE_DEPS=(importlib_metadata einops mat4py modelindex)
if ! present mmpretrain==1.2.0 "${PRE_DEPS[@]}"; then
  say "mmpretrain 1.2.0 (ImageNet pretraining)"
  "${PIP[@]}" --no-deps mmpretrain==1.2.0
  "${PIP[@]}" "${PRE_DEPS[@]}" "setuptools>=77,<82"
fi
ROOT=$(pwd)
# checked from / so that the source tree itself does not count as installed;
# the install also leaves steps_mm.egg-info in the root, through which
# `python -m mim search steps_mm` run there finds the model index
if ! (cd / && "$PY" -c "import os, sys, steps_mm; sys.exit(os.path.dirname(steps_mm.__path__[0]) != sys.argv[1])" "$ROOT") 2>/dev/null \
    || [ ! -d "$ROOT/steps_mm.egg-info" ]; then
  say "steps_mm (editable)"
  "${PIP[@]}" --no-deps --no-build-isolation -e .
fi
"$PY" -c "import steps_mm, mmcv, mmdet, mmseg, torch; import importlib.metadata as m; print('[install] ready: steps_mm', steps_mm.__version__, '| torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmpretrain', m.version('mmpretrain'))"
