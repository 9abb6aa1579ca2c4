"""Shipped configs: which codebase runs each, and their models built as the
Runner builds them."""
import copy
import glob
import importlib.util
import os.path as osp
from typing import List, Tuple

from ..registry import inherited_codebase


def shipped_configs(root: str) -> Tuple[List[str], List[str]]:
    """``(usable, skipped)``: every config under ``root/configs`` (recursively,
    sorted) whose codebase can be imported, and those whose cannot."""
    usable, skipped = [], []
    for path in sorted(glob.glob(osp.join(root, 'configs', '**', '*.py'),
                                 recursive=True)):
        codebase = inherited_codebase(path)
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
