"""Say, in one line, when the installed OpenMMLab stack is outside the tested matrix."""
import importlib.metadata as metadata
import warnings
from typing import Dict, Optional

from .stack import STACK

#: distribution -> (tested version, supported range as text)
TESTED = {dist: (tested, f'{supported} (tested {tested})')
          for dist, (supported, tested) in STACK.items()}


def installed_versions() -> Dict[str, Optional[str]]:
    found = {}
    for dist in TESTED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def _release(version: str) -> tuple:
    parts = []
    for piece in version.split('+')[0].split('.')[:3]:
        digits = ''.join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_versions(found: Optional[Dict[str, Optional[str]]] = None) -> Optional[str]:
    """Warn once, in one line, about versions outside the tested matrix; raise
    only for combinations that cannot work. Returns the warning text, if any."""
    found = installed_versions() if found is None else found
    if found.get('mmcv') and _release(found['mmcv']) >= (2, 2, 0) and (
            found.get('mmdet') or found.get('mmsegmentation')):
        raise ImportError(
            f"steps_mm: mmcv {found['mmcv']} is installed, but mmdet 3.3 and mmseg "
            "1.2 require mmcv<2.2.0; run tools/install.sh (it builds mmcv 2.1.0)")
    untested = [f'{dist} {version}' for dist, version in found.items()
                if version is not None
                and not version.split('+')[0].startswith(TESTED[dist][0])]
    if not untested:
        return None
    supported = '; '.join(f'{d} {r}' for d, (_, r) in TESTED.items())
    message = (f"steps_mm: untested versions found: {', '.join(untested)}. "
               f'Supported: {supported}.')
    warnings.warn(message, stacklevel=2)
    return message
