"""Pretrained weights that fail loudly.

``load_pretrained(backbone, checkpoint)`` reads a checkpoint in any accepted key
scheme, maps every key explicitly, checks names and shapes, resizes what may be
resized and loads, or raises a ``PretrainedError`` that lists the offending keys and
names the fix. What it knows of a backbone family (its key schemes, optional and
derived keys, how its tables resize) it reads from the backbone class; the other
families, named when a checkpoint belongs to one of them, from the ``steps_mm``
registry.

Accepted: steps_mm checkpoints (``StepsImageClassifier``: ``backbone.*``, ``head.*``),
mmengine / mmpretrain / mmdet / mmseg checkpoints (``state_dict``, ``backbone.``, a
user ``prefix``) and raw checkpoints of the baselines (``model`` / ``state_dict``,
``module.``) in their official or timm names, which only the sequential layout can
load. A *key scheme* of a family is a list of rules ``regex -> target`` (or
``DROP``); every source key must match one rule, so a key no rule knows is an error,
never silently skipped.
"""
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from mmengine.logging import print_log

from ...registry import MODELS
from .key_schemes import DROP, KeyScheme

__all__ = ['PretrainedError', 'LoadReport', 'load_pretrained', 'match_state_dict',
           'init_pretrained']

MIN_MATCHED = 0.95  # of the backbone's parameter values
ALWAYS_OPTIONAL = r'(.+\.)?num_batches_tracked'  # old torchvision checkpoints lack it


class PretrainedError(RuntimeError):
    """A checkpoint that cannot initialise the backbone as asked."""


# ---- reading -----------------------------------------------------------------------
def read_checkpoint(filename: str, map_location='cpu') -> dict:
    from mmengine.runner import CheckpointLoader
    try:
        ckpt = CheckpointLoader.load_checkpoint(filename, map_location=map_location,
                                                logger='current')
    except Exception as e:  # torch raises several types for a damaged file
        raise PretrainedError(
            f'cannot read checkpoint {filename}: {type(e).__name__}: {e}. The file is '
            f'truncated or not a torch checkpoint; download or write it again') from e
    if not isinstance(ckpt, dict):
        raise PretrainedError(f'checkpoint {filename} holds a {type(ckpt).__name__}, '
                              f'not a dict of tensors')
    return ckpt


def source_state_dict(ckpt: dict, prefix: Optional[str] = None):
    """The tensors to load -> (state dict, number of keys outside the prefix).

    Unwraps ``state_dict`` / ``model``, strips DDP's ``module.``, then keeps the
    keys under ``prefix`` (default ``backbone.`` when any key has it)."""
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    state = {(k[7:] if k.startswith('module.') else k): v for k, v in ckpt.items()
             if isinstance(v, torch.Tensor)}
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if not prefix:
        return state, 0
    kept = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not kept:
        heads = sorted({k.split('.')[0] + '.' for k in state})
        raise PretrainedError(f'no key of the checkpoint starts with prefix '
                              f'{prefix!r}; its keys start with {heads[:8]}: give '
                              f'one of those as prefix, or prefix=""')
    return kept, len(state) - len(kept)


# ---- mapping -----------------------------------------------------------------------
def family_class(model) -> type:
    """The class of ``model`` that carries its family's checkpoint knowledge."""
    if not getattr(type(model), 'key_schemes', None):
        raise TypeError(f'{type(model).__name__} is not a Steps backbone: it has no '
                        f'key_schemes for load_pretrained')
    return type(model)


def known_families(own: type) -> list:
    """``own`` and one class of every other family in the registry."""
    found = {own.family: own}
    for cls in MODELS.module_dict.values():
        if getattr(cls, 'key_schemes', None):
            found.setdefault(cls.family, cls)
    return list(found.values())


def last_stage(model) -> int:
    return len(model.stages) - 1 if hasattr(model, 'stages') else 0


def named_matches(scheme: KeyScheme, keys, last: int) -> int:
    """How many keys ``scheme`` renames (drops do not count: they are weak evidence)."""
    return sum(1 for k in keys if (hit := scheme.map(k, last)) and hit[1] is not DROP)


def choose_key_scheme(state: dict, model, own: type) -> KeyScheme:
    """The key scheme whose rules name the most keys; within the backbone's family,
    ties go to the one whose targets the backbone has (official vs timm Swin)."""
    last = last_stage(model)
    keys = [k for k in state if not re.fullmatch(own.derived_keys, k)]
    model_keys = set(model.state_dict())
    candidates = [(cls, scheme) for cls in known_families(own)
                  for scheme in cls.key_schemes]
    scores = {id(scheme): named_matches(scheme, keys, last)
              for _, scheme in candidates}
    best_cls, best = max(candidates, key=lambda c: (scores[id(c[1])], c[0] is own))
    if scores[id(best)] == 0:
        raise PretrainedError(
            f'no key of the checkpoint has a name of a known key scheme (first '
            f'keys: {short(keys, 5)}); {own.__name__} loads the key schemes '
            f'{[scheme.name for scheme in own.key_schemes]}')
    if best_cls.family != own.family:
        names = '/'.join(scheme.name for scheme in best_cls.key_schemes
                         if scores[id(scheme)] == scores[id(best)])
        raise PretrainedError(
            f'this looks like a {best_cls.title} checkpoint ({names} names: '
            f'{scores[id(best)]} of {len(keys)} keys); this backbone is '
            f'{own.__name__}: use {best_cls.__name__} for it, or give a '
            f'{own.title} checkpoint')

    def hits(scheme):
        return sum(1 for k in keys if (hit := scheme.map(k, last))
                   and hit[1] in model_keys)
    return max(own.key_schemes, key=lambda scheme: (hits(scheme), scores[id(scheme)]))


# ---- the report --------------------------------------------------------------------
def short(items, n: int = 3) -> str:
    items = list(items)
    more = f' +{len(items) - n} more' if len(items) > n else ''
    return '[' + ', '.join(map(str, items[:n])) + more + ']'


def shape_str(shape) -> str:
    return 'x'.join(map(str, shape))


@dataclass
class LoadReport:
    backbone: str
    checkpoint: str
    key_scheme: str
    matched: int = 0  # parameter tensors loaded
    total: int = 0  # parameter tensors of the backbone
    matched_values: int = 0
    total_values: int = 0
    loaded: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    missing: List[str] = field(default_factory=list)  # optional keys left as they were
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)
    resized: List[str] = field(default_factory=list)
    outside_prefix: int = 0
    derived: int = 0  # source buffers the backbone recomputes (relative_position_index)

    def line(self) -> str:
        pct = 100 * self.matched_values / max(self.total_values, 1)
        return (f'load_pretrained {self.backbone} <- {self.checkpoint} '
                f'({self.key_scheme} names): matched {self.matched}/{self.total} parameters '
                f'({pct:.1f}% of values); missing {len(self.missing)} '
                f'{short(self.missing)}; unexpected {len(self.unexpected)} '
                f'{short(self.unexpected)}; dropped {len(self.dropped)} '
                f'{short(self.dropped, 2)}; ignored {self.outside_prefix} outside '
                f'prefix, {self.derived} derived buffers; resized '
                f'{len(self.resized)} {short(self.resized, 2)}')


# ---- loading -----------------------------------------------------------------------
def match_state_dict(model, state: dict, checkpoint: str = '<state dict>',
                     outside_prefix: int = 0) -> LoadReport:
    """Map ``state`` onto ``model`` and check it; raises PretrainedError."""
    own = family_class(model)
    scheme = choose_key_scheme(state, model, own)
    backbone = f"{own.__name__}(layout='{model.layout}')"
    if scheme.baseline and model.layout == 'steps':
        raise PretrainedError(
            f"{checkpoint} is a {own.title} baseline checkpoint ({scheme.name} "
            f"names); layout='steps' cannot load a baseline checkpoint: use "
            f"layout='sequential'")
    report = LoadReport(backbone, checkpoint, f'{own.title} {scheme.name}',
                        outside_prefix=outside_prefix)
    target_state, last = model.state_dict(), last_stage(model)
    optional = rf'{own.optional_keys}|{ALWAYS_OPTIONAL}'
    for key, value in state.items():
        if re.fullmatch(own.derived_keys, key):
            report.derived += 1
            continue
        hit = scheme.map(key, last)
        if hit and hit[1] is DROP:
            report.dropped.append(key)
            continue
        name = hit[1] if hit else None
        if name not in target_state:
            if name and re.fullmatch(optional, name):  # an output norm not built here
                report.dropped.append(key)
            else:
                report.unexpected.append(key if name is None else f'{key} -> {name}')
            continue
        if name in report.loaded:
            raise PretrainedError(f'two keys of {checkpoint} map to {name}')
        value = hit[0].transform(value) if hit[0].transform else value
        shape = target_state[name].shape
        if value.shape != shape:
            resized = model.resize_loaded(name, value, shape)
            if resized is None:
                report.mismatched.append(f'{name}: checkpoint {shape_str(value.shape)}'
                                         f' vs backbone {shape_str(shape)}')
                continue
            report.resized.append(f'{name} {shape_str(value.shape)}->{shape_str(shape)}')
            value = resized
        report.loaded[name] = value
    required = []
    for name in target_state:
        if name not in report.loaded and not re.fullmatch(own.derived_keys, name):
            (report.missing if re.fullmatch(optional, name) else required).append(name)
    params = dict(model.named_parameters())
    report.total, report.total_values = len(params), sum(p.numel() for p in
                                                         params.values())
    got = [p for n, p in params.items() if n in report.loaded]
    report.matched, report.matched_values = len(got), sum(p.numel() for p in got)
    check(report, required, model, scheme)
    return report


def check(report: LoadReport, required: List[str], model, scheme: KeyScheme):
    problems = []
    if required:
        problems.append(f'missing {len(required)} keys {short(required, 6)}')
    if report.mismatched:
        problems.append(f'{len(report.mismatched)} shape mismatches '
                        f'{short(report.mismatched, 4)}')
    if report.unexpected:
        problems.append(f'unexpected {len(report.unexpected)} keys '
                        f'{short(report.unexpected, 6)}')
    fraction = report.matched_values / max(report.total_values, 1)
    if fraction < MIN_MATCHED:
        problems.append(f'only {100 * fraction:.1f}% of the parameter values matched '
                        f'(at least {100 * MIN_MATCHED:.0f}% needed)')
    if not problems:
        return
    if model.layout == 'steps':
        fix = ("layout='steps' loads only checkpoints of a Steps model of the same "
               "arch; a baseline checkpoint needs layout='sequential'")
    else:
        fix = (f'check arch, window/patch settings and layout against the model the '
               f'checkpoint was trained as (read as {scheme.name} names)')
    raise PretrainedError(f'{report.backbone} cannot load {report.checkpoint}: '
                          + '; '.join(problems) + f'. Fix: {fix}')


def load_pretrained(model, checkpoint: str, prefix: Optional[str] = None,
                    map_location='cpu') -> LoadReport:
    """Load ``checkpoint`` into the Steps backbone ``model`` (see the module doc),
    log one report line and return the report."""
    state, outside = source_state_dict(read_checkpoint(checkpoint, map_location), prefix)
    report = match_state_dict(model, state, str(checkpoint), outside)
    result = model.load_state_dict(report.loaded, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # checked above
    print_log(report.line(), logger='current')
    return report


def pretrained_cfg(init_cfg) -> Optional[dict]:
    """The ``Pretrained`` entry of an init_cfg (a dict or a list), or None."""
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    found = [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']
    return found[0] if found else None


def check_exists(model, cfg: dict):
    """Stop, naming the command that writes it, when a local checkpoint is absent.

    ``cfg['pretrain_config']`` (a steps_mm key of the ``Pretrained`` init_cfg) is
    the ImageNet config whose ``mim train mmpretrain`` run writes the checkpoint.
    """
    path = cfg['checkpoint']
    if '://' in str(path) or os.path.exists(path):
        return
    made_by = cfg.get('pretrain_config')
    how = (f'pretrain it first: `mim train mmpretrain {made_by}` (from {os.getcwd()}, '
           f'or give the checkpoint as an absolute path)' if made_by else
           'give an existing file')
    raise PretrainedError(
        f'{type(model).__name__}: the pretrained checkpoint {path} does not exist; '
        f'{how}, or train from scratch instead with '
        f'`--cfg-options model.backbone.init_cfg=None`')


def init_pretrained(model) -> bool:
    """``init_weights`` of a backbone whose init_cfg has a ``Pretrained`` entry: the
    other entries, then the checked load. False (nothing done) without one."""
    cfg = pretrained_cfg(model.init_cfg)
    if cfg is None or model.is_init:
        return False
    from mmengine.model import initialize
    others = [c for c in (model.init_cfg if isinstance(model.init_cfg, (list, tuple))
                          else [model.init_cfg]) if c is not cfg]
    check_exists(model, cfg)
    if others:
        initialize(model, others)
    load_pretrained(model, cfg['checkpoint'], cfg.get('prefix'),
                    cfg.get('map_location', 'cpu'))
    model._is_init = True
    return True
