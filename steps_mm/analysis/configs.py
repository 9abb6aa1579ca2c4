"""Shipped configs: which codebase runs each, and their models built as the
Runner builds them."""
import copy
import glob
import importlib.util
import os.path as osp
import re
from typing import List, Optional, Tuple

_SCOPE = re.compile(r"""['"](mm[a-z]+)::""")
_LOCAL_BASE = re.compile(r"""_base_\s*=\s*\[?\s*['"](\.{1,2}/[^'"]+)['"]""")


def config_codebase(config: str) -> Optional[str]:
    """The codebase (``mmdet``, ``mmseg``, ``mmpretrain``) whose ``::`` bases
    ``config`` inherits, following local ``_base_`` files; read as text, so it
    works when that codebase is not installed."""
    seen = set()
    while config and config not in seen:
        seen.add(config)
        with open(config) as f:
            text = f.read()
        found = _SCOPE.search(text)
        if found:
            return found.group(1)
        base = _LOCAL_BASE.search(text)
        config = osp.normpath(osp.join(osp.dirname(config), base.group(1))) \
            if base else None
    return None


def shipped_configs(root: str) -> Tuple[List[str], List[str]]:
    """``(usable, skipped)``: every config under ``root/configs`` (recursively,
    sorted) whose codebase can be imported, and those whose cannot."""
    usable, skipped = [], []
    for path in sorted(glob.glob(osp.join(root, 'configs', '**', '*.py'),
                                 recursive=True)):
        codebase = config_codebase(path)
        if codebase and importlib.util.find_spec(codebase) is not None:
            usable.append(path)
        else:
            skipped.append(path)
    return usable, skipped


def build_model(cfg, pretrained: bool = True):
    """The model of a loaded config, built as mmengine's ``Runner`` builds it: in
    the config's default scope, with the config's top-level ``data_preprocessor``
    merged into the model's (where the recipes set Mixup/CutMix's
    ``num_classes``). ``pretrained=False`` drops the backbone's ``init_cfg``, so
    that nothing is loaded or downloaded even by ``init_weights``."""
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:  # as Runner.__init__
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    if not pretrained and 'backbone' in model_cfg:
        model_cfg.backbone.init_cfg = None
    return MODELS.build(model_cfg)


def build_from_config(config: str):
    """``(model, cfg, codebase)``: the model of the config file ``config`` built
    as the Runner builds it, with no pretrained weights."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    return build_model(cfg, pretrained=False), cfg, cfg.get('default_scope')
