"""The import-time version check (``steps_mm.env_check``): its messages."""
import warnings

import pytest

from steps_mm.env_check import check_versions

TESTED = dict(torch='2.13.0+cpu', mmengine='0.10.7', mmcv='2.1.0', mmdet='3.3.0',
              mmsegmentation='1.2.2')


def test_tested_matrix_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert check_versions(dict(TESTED)) is None


def test_untested_versions_warn_in_one_line():
    found = dict(TESTED, torch='2.5.1', mmsegmentation=None)
    with pytest.warns(UserWarning) as record:
        message = check_versions(found)
    assert len(record) == 1 and '\n' not in message
    assert 'untested versions found: torch 2.5.1' in message
    assert 'Supported: torch >=2.1' in message and 'mmsegmentation' not in \
        message.split('Supported')[0]


def test_mmcv_too_new_for_mmdet_raises():
    with pytest.raises(ImportError, match='mmcv 2.2.0 is installed.*mmcv<2.2.0'):
        check_versions(dict(TESTED, mmcv='2.2.0'))
