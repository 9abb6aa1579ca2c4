"""The twin relation: a Steps config and its residual baseline.

The shipped configs declare it by construction: each baseline builds the same model
with ``backbone.layout='sequential'`` (``configs/convnext_maskrcnn.py`` inherits
``steps_convnext_maskrcnn.py`` and changes the layout and, with it, where the
weights come from; the ImageNet pairs are the same stock recipe with either
layout). So two configs are twins when their resolved configs are equal except for
the layout and what follows from it: which blocks feed the outputs
(``out_indices``: a Steps ViT has more blocks) and the pretrained weights
(``init_cfg``). ``tests/lab/results/test_tables.py`` checks that this pairs every shipped Steps
config with exactly one baseline. The same rule pairs finished runs from their
dumped configs, whatever the files were called.
"""
import json
from typing import Dict, List, Optional, Tuple

#: backbone keys that follow from the layout
LAYOUT_KEYS = ('layout', 'out_indices', 'init_cfg')
#: what the Runner trains and tests by, besides the model: a like-for-like pair
#: shares every section (where and how it ran, logging and helper variables of
#: the config files do not count), with what a mismatch means
RECIPE_SECTIONS = {
    'train_cfg': 'schedule', 'param_scheduler': 'schedule',
    'optim_wrapper': 'optimizer', 'auto_scale_lr': 'optimizer',
    'train_dataloader': 'training data', 'data_preprocessor': 'data preprocessing',
    'val_dataloader': 'validation data', 'val_evaluator': 'validation data',
    'test_dataloader': 'test data', 'test_evaluator': 'test data',
    'val_cfg': 'evaluation loops', 'test_cfg': 'evaluation loops',
    'custom_hooks': 'hooks', 'randomness': 'seed',
}
STEPS, BASELINE = 'steps', 'sequential'


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def plain_config(cfg) -> Dict:
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)


def backbone_of(cfg) -> Dict:
    """The backbone section of a config's model (empty when it has none)."""
    return plain_config(cfg)['model'].get('backbone', {})


def layout(cfg) -> Optional[str]:
    """``'steps'`` / ``'sequential'`` for a steps_mm backbone, else None."""
    backbone = backbone_of(cfg)
    if 'Steps' not in str(backbone.get('type', '')):
        return None
    return backbone.get('layout', STEPS)


def model_key(cfg) -> str:
    """The model of ``cfg`` without what depends on the layout: equal for twins."""
    model = dict(plain_config(cfg)['model'])
    model['backbone'] = {k: v for k, v in model.get('backbone', {}).items()
                         if k not in LAYOUT_KEYS}
    return _canonical(dict(scope=plain_config(cfg).get('default_scope'), model=model))


def twin_key(cfg) -> str:
    """The model without the layout's keys and the recipe: equal for twins
    trained like for like (same schedule, optimizer, data, seed)."""
    plain = plain_config(cfg)
    return _canonical(dict(model=json.loads(model_key(cfg)),
                           **{k: plain.get(k) for k in RECIPE_SECTIONS}))


def init_kind(cfg) -> str:
    """Where the backbone's weights come from: ``scratch``, ``stock weights`` (a
    URL) or ``own pretraining`` (a local checkpoint, e.g. an ImageNet run)."""
    init = backbone_of(cfg).get('init_cfg')
    if not init or not init.get('checkpoint'):
        return 'scratch'
    return 'stock weights' if '://' in str(init['checkpoint']) else 'own pretraining'


def differences(steps_cfg, baseline_cfg) -> List[str]:
    """What differs between two twins beyond the layout, as
    ``'<what> (<section>)'`` lines; empty for a like-for-like pair."""
    a, b = plain_config(steps_cfg), plain_config(baseline_cfg)
    found = []
    for section, what in RECIPE_SECTIONS.items():
        if _canonical(a.get(section)) != _canonical(b.get(section)):
            found.append(f'{what} ({section})')
    if init_kind(a) != init_kind(b):
        found.append(f'backbone initialisation ({init_kind(a)} vs {init_kind(b)})')
    if model_key(a) != model_key(b):
        found.append('model beyond the layout (model)')
    return found


def pair(items: List, config_of) -> Tuple[List[Tuple], List]:
    """Pair Steps items with baseline items (runs or config paths) by their
    configs (``config_of(item)``): twins are items with equal ``model_key``;
    within such a group, equal ``twin_key`` (like for like) pairs first, then a
    lone remaining Steps item with a lone remaining baseline.
    Returns ``(pairs, unpaired)``, pairs as ``(steps, baseline)``."""
    groups: Dict[str, Dict[str, List]] = {}
    for item in items:
        cfg = config_of(item)
        side = layout(cfg)
        if side not in (STEPS, BASELINE):
            side = 'other'
        groups.setdefault(model_key(cfg), {}).setdefault(side, []).append(item)
    pairs, unpaired = [], []
    for group in groups.values():
        steps, baselines = group.get(STEPS, []), group.get(BASELINE, [])
        unpaired += group.get('other', [])
        for item in list(steps):
            key = twin_key(config_of(item))
            match = [b for b in baselines if twin_key(config_of(b)) == key]
            if match:
                pairs.append((item, match[0]))
                steps.remove(item)
                baselines.remove(match[0])
        if len(steps) == 1 and len(baselines) == 1:
            pairs.append((steps.pop(), baselines.pop()))
        unpaired += steps + baselines
    return pairs, unpaired
