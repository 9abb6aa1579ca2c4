"""steps_mm's import-only torchvision stand-in (see steps_mm.torchvision_standin)."""
import sys

from . import ops, transforms  # noqa: F401  (mmpretrain reads them as attributes)

__version__ = '0.0.0+steps_mm.standin'
print('[steps_mm] torchvision is not installed: using an import-only stand-in '
      '(mmpretrain imports it; its ImageNet recipes never call it)', file=sys.stderr)
