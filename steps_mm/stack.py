"""The software stack steps_mm runs on: for each distribution the supported range
and the tested version. One table, read by ``setup.py`` (its requirements),
``tools/install.sh`` (keep an installed version inside the range, install the
tested one where none is) and the import-time version check (``env_check``).

Standard library only and no package imports: the installer reads this file by
path before torch or mmengine exist.
"""

#: distribution -> (supported range, tested version)
STACK = {
    'torch': ('>=2.1', '2.13.0'),
    'mmengine': ('>=0.10,<1.0', '0.10.7'),
    'mmcv': ('>=2.0.0rc4,<2.2.0', '2.1.0'),
    'mmdet': ('>=3.0,<3.4', '3.3.0'),
    'mmsegmentation': ('>=1.0,<1.3', '1.2.2'),
    'mmpretrain': ('>=1.2,<1.3', '1.2.0'),
}


def requirement(dist: str) -> str:
    """``'mmdet>=3.0,<3.4'``: the supported range as a pip requirement."""
    return dist + STACK[dist][0]
