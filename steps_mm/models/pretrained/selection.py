"""Weight selection: a Steps backbone initialised from its twin's checkpoint.

No ImageNet weights of any Steps model exist, but every Steps model is built from
its twin's blocks at narrower widths, and the twin's checkpoints are everywhere.
Weight selection (Xu et al., "Initializing Models with Larger Ones", ICLR 2024,
arXiv 2311.18823) initialises a smaller model of a family with a subset of a
larger pretrained model's weights. Here the larger model is the twin (the same
backbone with ``layout='sequential'``) and the selection goes block by block:

1. The checkpoint is read by the checked loader into the twin's own names
   (``match_state_dict`` on the sequential twin, built from the Steps model's
   own constructor arguments), so every key scheme the loader reads works
   (official, timm, torchvision, OpenMMLab/mmpretrain, steps_mm classifiers) and
   a checkpoint of another family or arch stops with the loader's error.
2. Depth: block ``j`` of a step with ``D_i`` blocks in stage ``s`` takes the
   twin's block ``(2j + 1) * D // (2 D_i)`` of stage ``s`` (``D`` blocks): the
   twin block at the same relative depth *within its step* (the one holding the
   relative depth ``(j + 1/2) / D_i`` of the block's middle, so that a thinned
   step spans the twin stage from its first blocks to its last). Each step is a
   residual stack that
   maps a stage-input-like tensor to a stage-output-like one (the next step and
   the next stage read its output in the same channel positions), so each step is
   initialised as the whole twin stage, thinned (``D_i < D``) or with blocks
   repeated (``D_i > D``); a step of the stage's full width and depth is the twin
   stage itself. Stages outside the steps (their spec is the twin's) therefore
   copy block for block.
3. Elements: the first ones along every dimension: channels ``[0:C_i]`` of the
   residual stream, ``[0:hidden_i]`` of MLP and bottleneck widths (ResNet-50: the
   inner ``C_i / 4`` and the I/O ``C_i``), norms and layer scales alike. This is
   the paper's *consistent* selection (the same indices in every layer), and
   with prefixes it is also Steps' own channel order: the step widths are
   prefixes of the stage width, the first channels the slow path every step
   processes.
4. Attention keeps whole heads. ``qkv`` is read as (q|k|v, head, dim, in) and the
   ``proj`` input as (head, dim): heads ``[0:h_i]`` of the twin, and of each head
   the first ``min(d_i, d)`` dims, the same ones in q, k and v. Where a Steps
   head is narrower than the twin's (Steps-Swin-B 360/H12 and 720/H24: 30 vs 32;
   Steps-DeiT-T 96/H2: 48 vs 64) its dims are the first of the twin head's; where
   it is wider (Steps-Swin 272/H8 and 544/H16: 34 vs 32; Steps-DeiT 136/H2,
   272/H4, 544/H8: 68 vs 64) its extra dims keep the model's own initialisation
   (zeros would leave q and k of those dims with zero gradients for good), and
   the report counts them. Relative-position bias tables take the same heads.
5. Tensors outside the steps (stems, downsampling layers, output norms, position
   embeddings, ResNet's first blocks) have the twin's shapes and copy whole. A
   tensor the checkpoint lacks (an output norm a classifier does not have) keeps
   its own initialisation and the report names it.

Attention modules are recognised by their attributes: ``num_heads`` and Linear
``qkv`` / ``proj`` children, ``qkv``'s output in (q|k|v, head, dim) order as
``WindowMSA`` and ``MultiheadSelfAttention`` compute it.

This is an extension, not the paper's protocol: the paper selects from a larger
model of the same family into a narrower and shallower one (first-N layers); a
Steps model is narrower per step but deeper in total.

``init_cfg=dict(type='SelectFromTwin', checkpoint=..., prefix=None)`` on a Steps
backbone runs it (after the init_cfg's other entries, or the family's default
initialisation when there are none); ``tools/convert_checkpoint.py
--select-from-twin`` writes the result as a Steps checkpoint.
"""
import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS

from ..steps import StepsStage
from .loader import (LoadReport, PretrainedError, check_exists, match_state_dict,
                     pretrained_cfg, read_checkpoint, short, source_state_dict)

__all__ = ['SELECT_TYPE', 'Selected', 'SelectionReport', 'SelectFromTwin',
           'init_selected', 'select_from_twin', 'select_state_dict',
           'selected_backbone', 'sequential_twin']

#: the init_cfg type
SELECT_TYPE = 'SelectFromTwin'

#: constructor arguments that do not shape weights and may not suit the twin
#: (ViT's ``out_indices`` and ``frozen_stages`` count the Steps model's blocks):
#: the twin gets its defaults
_TWIN_DEFAULTS = ('out_indices', 'frozen_stages', 'drop_path_rate', 'init_cfg',
                  'with_cp', 'compile', 'channels_last')


# ---- the twin -------------------------------------------------------------------------
def backbone_name(model) -> str:
    """The tools' name of a built backbone (``StepsBackbone.model_name``):
    ``Steps-ConvNeXt-T``, or the class and layout for a custom arch."""
    cls, args = type(model), model.init_arguments or {}
    arch = args.get(cls.arch_arg, cls.default_arch())
    try:
        return cls.model_name(arch, model.layout)
    except (KeyError, TypeError):  # a custom arch dict
        return f"{cls.__name__}(layout='{model.layout}', custom arch)"


def sequential_twin(model):
    """The twin of the Steps backbone ``model``: its class built with the same
    arguments but ``layout='sequential'`` (and the defaults of
    ``_TWIN_DEFAULTS``), so that window, image and patch sizes, MLP ratios and
    norms match the model's."""
    if getattr(model, 'init_arguments', None) is None:
        raise PretrainedError(f'{type(model).__name__}: its constructor arguments '
                              f'are unknown, so its twin cannot be built; build the '
                              f'backbone through its constructor')
    args = {k: v for k, v in model.init_arguments.items() if k not in _TWIN_DEFAULTS}
    try:
        return type(model)(**dict(args, layout='sequential'))
    except (TypeError, ValueError) as e:
        raise PretrainedError(f'{backbone_name(model)}: cannot build its sequential '
                              f'twin from its arguments {args}: {e}') from e


def twin_blocks(model, twin) -> Dict[str, str]:
    """Steps block name -> the twin block it selects from (module doc, 2)."""
    twin_modules = dict(twin.named_modules())
    found = {}
    for name, stage in model.named_modules():
        if not isinstance(stage, StepsStage):
            continue
        depth, k = len(twin_modules[name]), 0
        for _, step_depth in stage.spec:
            for j in range(step_depth):
                if depth:
                    twin_block = (2 * j + 1) * depth // (2 * step_depth)
                    found[f'{name}.{k}'] = f'{name}.{twin_block}'
                k += 1
    return found


def source_name(key: str, blocks: Dict[str, str]) -> str:
    """The twin's name of the tensor that ``key`` selects from."""
    parts = key.split('.')
    for i in range(1, len(parts)):
        block = '.'.join(parts[:i])
        if block in blocks:
            return '.'.join([blocks[block]] + parts[i:])
    return key


# ---- elements -------------------------------------------------------------------------
def grouped_shape(modules: dict, key: str, shape) -> Tuple[int, ...]:
    """The shape ``key`` is selected in: attention projections with their heads
    apart (module doc, 4), every other tensor as it is."""
    owner, _, leaf = key.rpartition('.')
    attn_name, _, linear = owner.rpartition('.')
    attn = modules.get(attn_name)
    heads = getattr(attn, 'num_heads', None)
    if not heads or not all(isinstance(getattr(attn, n, None), torch.nn.Linear)
                            for n in ('qkv', 'proj')):
        return tuple(shape)
    if linear == 'qkv':  # (3C[, C_in]) -> (3, heads, head dim[, C_in])
        return (3, heads, shape[0] // (3 * heads), *shape[1:])
    if linear == 'proj' and leaf == 'weight':  # (C_out, C) -> (C_out, heads, dim)
        return (shape[0], heads, shape[1] // heads)
    return tuple(shape)


@dataclass
class Selected:
    """Where one Steps tensor comes from."""
    source: str  # the twin's tensor name
    source_shape: Tuple[int, ...]
    view: Tuple[int, ...]  # the source's shape as selected (heads apart)
    taken: Tuple[int, ...]  # the first ``taken[d]`` elements of each dim of ``view``
    own_view: Tuple[int, ...]  # the Steps tensor's shape, grouped the same way
    #: elements left at the model's own initialisation (wider heads)
    own_init: int = 0
    copied: bool = False  # the same name, the whole tensor

    def index(self) -> str:
        """``[0:272, 0:384]``, or ``.view(3, 12, 32, 384)[:, 0:8, :, 0:272]`` with
        the heads apart; empty for the whole tensor."""
        dims = [':' if t == n else f'0:{t}' for t, n in zip(self.taken, self.view)]
        while dims and dims[-1] == ':':
            dims.pop()
        if not dims:
            return ''
        view = '' if self.view == self.source_shape else \
            f'.view({", ".join(map(str, self.view))})'
        return view + f'[{", ".join(dims)}]'

    def __str__(self) -> str:
        text = self.source + self.index()
        if self.own_init:
            wider = [f'{t}:{n} of dim {d}' for d, (t, n) in
                     enumerate(zip(self.taken, self.own_view)) if n > t]
            shape = ', '.join(map(str, self.own_view))
            text += (f' (own init: elements {", ".join(wider)} of ({shape}), '
                     f'{self.own_init} values)')
        return text


def select(own: torch.Tensor, source: torch.Tensor, own_view, view,
           name: str) -> Tuple[torch.Tensor, Tuple[int, ...], int]:
    """``own`` with its leading elements (in ``own_view``) replaced by the
    leading ones of ``source`` (in ``view``) -> (tensor, taken, own-init count)."""
    if len(own_view) != len(view):
        raise PretrainedError(f'{name}: the twin tensor has shape {tuple(view)}, '
                              f'the Steps one {tuple(own_view)}: no selection maps '
                              f'one onto the other')
    taken = tuple(min(a, b) for a, b in zip(own_view, view))
    region = tuple(slice(0, t) for t in taken)
    out = own.detach().clone().reshape(own_view)
    out[region] = source.reshape(view)[region].to(device=out.device, dtype=out.dtype)
    return out.reshape(own.shape), taken, own.numel() - math.prod(taken)


# ---- the report -----------------------------------------------------------------------
@dataclass
class SelectionReport:
    backbone: str  # Steps-ConvNeXt-T
    twin: str  # ConvNeXt-T
    checkpoint: str
    load: LoadReport  # how the checkpoint was read into the twin
    sources: Dict[str, Selected] = field(default_factory=dict)  # Steps name -> source
    own_init: List[str] = field(default_factory=list)  # Steps tensors with no source
    unused: List[str] = field(default_factory=list)  # twin tensors nothing takes
    #: the selected tensors by Steps name (own-init ones are not in it)
    state: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def copied(self) -> List[str]:
        return [k for k, s in self.sources.items() if s.copied]

    @property
    def partial(self) -> List[str]:
        return [k for k, s in self.sources.items() if s.own_init]

    def line(self) -> str:
        n = len(self.sources)
        sliced = n - len(self.copied)
        return (f'select_from_twin {self.backbone} <- {self.checkpoint} '
                f'({self.load.key_scheme} names, read as its twin {self.twin}): '
                f'{n} tensors selected '
                f'({len(self.copied)} copied whole, {sliced} sliced, '
                f'{len(self.partial)} of them with elements at own init '
                f'{short(self.partial, 2)}); own init {len(self.own_init)} '
                f'{short(self.own_init)}; twin tensors unused {len(self.unused)} '
                f'{short(self.unused, 2)}')

    def lines(self) -> List[str]:
        """Every Steps tensor and its source, in the model's order."""
        out = [f'{name} <- {src}' for name, src in self.sources.items()]
        return out + [f'{name} <- own init' for name in self.own_init]


# ---- selecting ------------------------------------------------------------------------
def select_state_dict(model, state: dict, checkpoint: str = '<state dict>',
                      outside_prefix: int = 0, twin=None) -> SelectionReport:
    """Select ``model``'s tensors from ``state``, a checkpoint of its twin in any
    key scheme the loader reads; raises PretrainedError. Elements left at own
    initialisation are taken from ``model``'s current values. ``twin``: the
    model's ``sequential_twin``, when already built."""
    twin = sequential_twin(model) if twin is None else twin
    try:
        load = match_state_dict(twin, state, checkpoint, outside_prefix)
    except PretrainedError as e:
        schemes = ', '.join(scheme.name for scheme in type(model).key_schemes)
        raise PretrainedError(
            f'{backbone_name(model)} selects from a checkpoint of its twin '
            f'{backbone_name(twin)}; {checkpoint} is not one: {e}. Give a '
            f'{backbone_name(twin)} checkpoint ({schemes} names); a checkpoint of '
            f'{backbone_name(model)} itself loads with init_cfg=dict(type='
            f"'Pretrained')") from e
    report = SelectionReport(backbone_name(model), backbone_name(twin), checkpoint,
                             load)
    blocks = twin_blocks(model, twin)
    modules, twin_modules = dict(model.named_modules()), dict(twin.named_modules())
    used = set()
    for name, own in model.state_dict().items():
        if re.fullmatch(type(model).derived_keys, name):
            continue
        src = source_name(name, blocks)
        if src not in load.loaded:
            report.own_init.append(name)
            continue
        value = load.loaded[src]
        own_view = grouped_shape(modules, name, own.shape)
        view = grouped_shape(twin_modules, src, value.shape)
        tensor, taken, own_init = select(own, value, own_view, view, name)
        report.state[name] = tensor
        report.sources[name] = Selected(
            src, tuple(value.shape), view, taken, own_view, own_init,
            copied=src == name and own.shape == value.shape)
        used.add(src)
    report.unused = [k for k in load.loaded if k not in used]
    return report


def select_from_twin(model, checkpoint: str, prefix: Optional[str] = None,
                     map_location='cpu', twin=None) -> SelectionReport:
    """Initialise the Steps backbone ``model`` by selection from ``checkpoint``, a
    checkpoint of its twin (module doc); log the loader's line (how the
    checkpoint was read into the twin), the selection's line and, at DEBUG level,
    the source of every tensor; return the report."""
    state, outside = source_state_dict(read_checkpoint(checkpoint, map_location), prefix)
    report = select_state_dict(model, state, str(checkpoint), outside, twin)
    result = model.load_state_dict(report.state, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # built from its keys
    print_log(report.load.line(), logger='current')
    print_log(report.line(), logger='current')
    print_log('\n'.join(report.lines()), logger='current', level=10)  # DEBUG
    return report


def selected_backbone(cls, arch, checkpoint: str, prefix: Optional[str] = None,
                      **options):
    """A Steps backbone of ``cls`` and ``arch`` as a classifier holds it (the last
    output), initialised as a model trained from scratch, then by selection from
    ``checkpoint`` -> (backbone, report)."""
    from mmengine.model import initialize
    model = cls(**{cls.arch_arg: arch}, layout='steps', out_indices=-1, **options)
    initialize(model, model.init_cfg)  # the default (not init_weights: no log dump)
    return model, select_from_twin(model, checkpoint, prefix)


# ---- init_cfg -------------------------------------------------------------------------
def selection_cfg(init_cfg) -> Optional[dict]:
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    found = [c for c in cfgs if isinstance(c, dict) and c.get('type') == SELECT_TYPE]
    return found[0] if found else None


def init_selected(model) -> bool:
    """``init_weights`` of a backbone whose init_cfg has a ``SelectFromTwin``
    entry: the other entries (the family's default initialisation when there are
    none), then the selection. False (nothing done) without one."""
    cfg = selection_cfg(model.init_cfg)
    if cfg is None or model.is_init:
        return False
    if pretrained_cfg(model.init_cfg) is not None:
        raise PretrainedError(f'{type(model).__name__}: init_cfg has both a '
                              f'Pretrained and a {SELECT_TYPE} entry; keep one')
    from mmengine.model import initialize
    cfgs = model.init_cfg if isinstance(model.init_cfg, (list, tuple)) else [cfg]
    others = [c for c in cfgs if c is not cfg]
    check_exists(model, cfg)
    twin = sequential_twin(model)  # built with init_cfg=None: the family's default
    initialize(model, others or twin.init_cfg)
    select_from_twin(model, cfg['checkpoint'], cfg.get('prefix'),
                     cfg.get('map_location', 'cpu'), twin)
    model._is_init = True
    return True


@WEIGHT_INITIALIZERS.register_module(name=SELECT_TYPE)
class SelectFromTwin:
    """The mmengine initialiser: ``init_cfg=dict(type='SelectFromTwin',
    checkpoint=..., prefix=None)``. Steps backbones run it through their
    ``init_weights`` (``init_selected``); mmengine calls this class where
    ``initialize`` is applied to a backbone directly."""

    def __init__(self, checkpoint: str, prefix: Optional[str] = None,
                 map_location='cpu', pretrain_config: Optional[str] = None):
        self.checkpoint, self.prefix = checkpoint, prefix
        self.map_location = map_location
        self.pretrain_config = pretrain_config

    def __call__(self, module):
        if not getattr(type(module), 'key_schemes', None):
            raise TypeError(f'{SELECT_TYPE} initialises a Steps backbone, not a '
                            f'{type(module).__name__}: give the init_cfg to the '
                            f'backbone (model.backbone.init_cfg)')
        check_exists(module, dict(checkpoint=self.checkpoint,
                                  pretrain_config=self.pretrain_config))
        select_from_twin(module, self.checkpoint, self.prefix, self.map_location)
        if hasattr(module, '_params_init_info'):
            from mmengine.model.weight_init import update_init_info
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return f'{SELECT_TYPE}: selected from {self.checkpoint}'
