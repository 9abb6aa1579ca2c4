#!/usr/bin/env bash
# Install steps_mm and the stack it runs on into the current Python environment,
# keeping an installed torch, mmcv (with working compiled ops), mmengine, mmdet,
# mmseg and mmpretrain inside steps_mm/stack.py's ranges; the tested versions only
# where none is. Prints every decision; --dry-run changes nothing. Idempotent:
# with everything present it only checks (seconds). A first install builds mmcv
# from source: ~20 min on 2 CPU cores (pip caches the wheel). docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" steps_lab/installer.py "$@"
