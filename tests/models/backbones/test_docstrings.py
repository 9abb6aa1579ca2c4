"""Every backbone's docstring documents each constructor argument, in order, in
mmpretrain's style: ``name (type): ... Defaults to <default>.``"""
import inspect
import re

import pytest

from steps_mm.models import BACKBONES, StepsBackbone

ENTRY = re.compile(r'^        (\w+) \([^)]+\):(.*?)(?=^        \w+ \(|\Z)', re.M | re.S)


@pytest.mark.parametrize('cls', [StepsBackbone, *BACKBONES], ids=lambda c: c.__name__)
def test_every_init_argument_is_documented_with_type_and_default(cls):
    documented = dict(ENTRY.findall(cls.__doc__.split('    Args:\n', 1)[1]))
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert list(documented) == [p.name for p in params]
    for p in params:
        if p.default is not inspect.Parameter.empty:
            assert 'Defaults to' in documented[p.name], p.name
