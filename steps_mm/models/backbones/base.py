"""Options shared by every Steps backbone: arch tables, layouts, stochastic depth,
output selection, freezing, checkpointing and feature metadata. Families add
their stem, their downsampling, their block and what the loader and the tools
need to know of them (the class attributes of ``StepsBackbone``)."""
import inspect
import json
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ..pretrained import init_pretrained
from ..pretrained.selection import init_selected
from ..steps import StepSpec, StepsStage, check_layout, validate_spec


class StepsBackbone(BaseModule):
    """Base of the hierarchical and plain Steps backbones.

    A family defines ``arch_settings``: ``name -> dict(channels=[...], depths=[...],
    steps=[spec per stage])``. ``channels``/``depths`` describe the residual baseline
    (the sequential and parallel layouts); ``steps`` the StepsNet stages. The
    other class attributes below tell the checkpoint loader and the tools
    (``convert_checkpoint``, ``benchmark``, ``fidelity_table``) about the family,
    whose constructor takes these arguments too (ResNet: ``depth`` for ``arch``).

    Args:
        arch (str | dict): A name of ``arch_settings``, or a dict with the
            family's ``arch_keys`` and, for ``layout='steps'``, ``steps``.
        layout (str): The block layout: ``'steps'`` (StepsNet),
            ``'sequential'`` (the baseline) or ``'parallel'`` (the baseline's
            residual branches summed, arXiv 2309.08414). Defaults to 'steps'.
        with_cp (bool): Gradient checkpointing per block (less memory, slower
            training). Defaults to False.
        init_cfg (dict | list[dict], optional): mmengine's initialization
            config. A ``Pretrained`` entry loads through the checked loader
            (``steps_mm.models.pretrained``), a ``SelectFromTwin`` entry
            selects from the twin's checkpoint. Defaults to None.
        compile (bool | dict): ``True`` or ``torch.compile`` options: compile
            the whole backbone at its first call (same outputs as eager).
            Defaults to False.
    """

    arch_settings: Dict[str, dict] = {}
    #: the constructor argument that names the arch (``depth`` for ResNet)
    arch_arg = 'arch'
    #: the family's key in tools (``convert_checkpoint.py --family``)
    family = ''
    #: its name in messages and model names
    title = ''
    #: arch -> short name: the tools' model names are ``<title>-<short>`` (the
    #: sequential layout, the baseline) and ``Steps-<title>-<short>``
    arch_names: Dict[Union[str, int], str] = {}
    #: the checkpoint namings the family loads (``pretrained.key_schemes.KeyScheme``)
    key_schemes: list = []
    #: backbone keys a checkpoint may lack (left as initialised), and may hold
    #: for a backbone that did not build them: output norms
    optional_keys = r'(?!)'
    #: buffers the backbone derives from its settings: never loaded
    derived_keys = r'(?!)'
    #: the arguments that make every output one (B, C) vector, as an image
    #: classifier's head needs (outputs are NCHW maps by default)
    classification_output = dict(gap_before_final_norm=True)
    #: the arguments that give several outputs, for checks over all of them
    #: (``tools/check_export.py``); by default one per stage
    several_outputs: dict = {}
    #: the keys a custom arch dict must have, beyond ``steps``
    arch_keys = ('channels', 'depths')

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        # The constructor's arguments by name, so that weight selection can build
        # this model's sequential twin (``pretrained.selection``); None when they
        # do not bind, and the constructor raises its own error.
        try:
            self.init_arguments = dict(
                inspect.signature(cls).bind(*args, **kwargs).arguments)
        except TypeError:
            self.init_arguments = None
        return self

    def __init__(self, arch: Union[str, dict], layout: str = 'steps',
                 with_cp: bool = False, init_cfg=None,
                 compile: Union[bool, dict] = False):
        super().__init__(init_cfg=init_cfg)
        self.layout = check_layout(layout)
        self.arch = self.resolve_arch(arch, layout)
        self.with_cp = with_cp
        if compile:  # lazy, at the first call; Module.compile keeps the names
            self.compile(**({} if compile is True else compile))

    def use_channels_last(self, enabled: bool) -> None:
        """NHWC memory (conv families): weights now, each input at the call, so
        that convolutions and the blocks' NHWC permutes copy nothing."""
        self.channels_last = enabled
        if enabled:
            self.to(memory_format=torch.channels_last)
            self.register_forward_pre_hook(_channels_last_input)

    # ---- arch tables -------------------------------------------------------
    @classmethod
    def default_arch(cls):
        """The arch the constructor builds when none is given."""
        return inspect.signature(cls).parameters[cls.arch_arg].default

    @classmethod
    def arch_from_text(cls, text: str):
        """An arch given on a command line: a name (``tiny``, ``50``) or a JSON
        dict."""
        if text.lstrip().startswith('{'):
            return json.loads(text)
        return next((arch for arch in cls.arch_settings if str(arch) == text), text)

    @classmethod
    def model_name(cls, arch, layout: str = 'sequential') -> str:
        """The tools' name of a model of the family: ``<title>-<short arch>`` for
        the baseline, ``Steps-<title>-<short arch>`` for the steps layout."""
        prefix = 'Steps-' if layout == 'steps' else ''
        return f'{prefix}{cls.title}-{cls.arch_names[arch]}'

    @classmethod
    def named_models(cls) -> Dict[str, dict]:
        """The tools' names of the family's models, each baseline before its
        Steps twin: ``{'Swin-T': dict(type='StepsSwinTransformer', arch='tiny',
        layout='sequential'), 'Steps-Swin-T': dict(..., layout='steps'), ...}``."""
        return {cls.model_name(arch, layout): {'type': cls.__name__, cls.arch_arg: arch,
                                               'layout': layout}
                for arch in cls.arch_names for layout in ('sequential', 'steps')}

    @classmethod
    def for_checkpoint(cls, arch=None, **options) -> 'StepsBackbone':
        """The sequential backbone that a baseline classifier's checkpoint fits:
        the last stage's output (and its norm) only."""
        arch = cls.default_arch() if arch is None else arch
        return cls(**{cls.arch_arg: arch}, layout='sequential', out_indices=-1,
                   **options)

    @classmethod
    def resolve_arch(cls, arch: Union[str, dict], layout: str) -> dict:
        name = cls.__name__
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise ValueError(f'{name}: unknown arch {arch!r}; choose one of '
                                 f'{sorted(cls.arch_settings)} or pass a dict with keys '
                                 f'{list(cls.arch_keys) + ["steps"]}')
            return cls.arch_settings[arch]
        if not isinstance(arch, dict):
            raise TypeError(f'{name}: arch must be a name or a dict, got {type(arch)}')
        needed = list(cls.arch_keys) + (['steps'] if layout == 'steps' else [])
        missing = [k for k in needed if k not in arch]
        if missing:
            raise ValueError(f'{name}: a custom arch for layout={layout!r} needs keys '
                             f'{needed}; missing {missing}')
        return arch

    def stage_specs(self, check_width: Optional[Callable[[int], Optional[str]]] = None
                    ) -> List[StepSpec]:
        """The validated step spec of every stage for ``self.layout``."""
        channels, depths = self.arch['channels'], self.arch['depths']
        if len(channels) != len(depths):
            raise ValueError(f'{type(self).__name__}: arch channels {channels} and '
                             f'depths {depths} must have the same length')
        if self.layout == 'steps':
            specs = self.arch['steps']
            if len(specs) != len(channels):
                raise ValueError(f'{type(self).__name__}: arch steps give '
                                 f'{len(specs)} stages, channels {len(channels)}')
        else:
            specs = [[(c, d)] for c, d in zip(channels, depths)]
        return [validate_spec(spec, width, f'{type(self).__name__} stage {i}',
                              check_width)
                for i, (spec, width) in enumerate(zip(specs, channels))]

    # ---- building helpers ----------------------------------------------------
    @staticmethod
    def drop_path_rates(specs: Sequence[StepSpec], drop_path_rate: float,
                        extra_blocks: Sequence[int] = ()) -> List[List[float]]:
        """Per stage, the drop-path rate of each block: linear from 0 to
        ``drop_path_rate`` over *all* blocks of the backbone in forward order.
        ``extra_blocks[i]`` counts blocks of stage i outside its steps (a ResNet
        stage's downsampling block), which come first in that stage."""
        counts = [sum(d for _, d in spec) + (extra_blocks[i] if extra_blocks else 0)
                  for i, spec in enumerate(specs)]
        # on the CPU: plain floats, also where a backbone is built on the meta device
        rates = torch.linspace(0, drop_path_rate, max(sum(counts), 1),
                               device='cpu').tolist()
        per_stage, start = [], 0
        for n in counts:
            per_stage.append(rates[start:start + n])
            start += n
        return per_stage

    def build_stage(self, spec: StepSpec, block_factory: Callable[[int, int], object],
                    channel_dim: int = 1) -> StepsStage:
        return StepsStage(spec, block_factory, channel_dim=channel_dim,
                          parallel=self.layout == 'parallel', with_cp=self.with_cp)

    @staticmethod
    def normalize_indices(indices: Union[int, Sequence[int]], num: int,
                          what: str = 'out_indices') -> List[int]:
        if isinstance(indices, int):
            indices = [indices]
        out = []
        for i in indices:
            if not isinstance(i, int) or not -num <= i < num:
                raise ValueError(f'{what} must be ints in [{-num}, {num - 1}] '
                                 f'(there are {num} outputs), got {list(indices)}')
            out.append(i % num)
        if len(set(out)) != len(out):
            raise ValueError(f'{what} {list(indices)} name the same output twice')
        return sorted(out)

    # ---- outputs and freezing ------------------------------------------------
    def set_outputs(self, num: int, out_indices: Union[int, Sequence[int], None],
                    frozen_stages: int, what: str = 'out_indices') -> None:
        """Validate and set ``out_indices`` (of ``num`` possible outputs; None:
        all) and ``frozen_stages`` (``-1`` .. ``num``)."""
        self.out_indices = self.normalize_indices(
            range(num) if out_indices is None else out_indices, num, what)
        if not -1 <= frozen_stages <= num:
            raise ValueError(f'frozen_stages must be in [-1, {num}], '
                             f'got {frozen_stages}')
        self.frozen_stages = frozen_stages

    def set_stage_outputs(self, num_stages: int,
                          out_indices: Union[int, Sequence[int], None],
                          frozen_stages: int, gap_before_final_norm: bool) -> None:
        """``set_outputs`` for a hierarchical backbone: one output per stage, of the
        arch's channels, at strides 4, 8, 16, ..., pooled to a vector where
        ``gap_before_final_norm``."""
        self.stage_channels = list(self.arch['channels'])
        self.stage_strides = [4 * 2 ** i for i in range(num_stages)]
        self.gap_before_final_norm = gap_before_final_norm
        self.set_outputs(num_stages, out_indices, frozen_stages)

    def frozen_modules(self) -> list:
        """The modules (and parameters outside them) that ``frozen_stages``
        freezes; families override."""
        return []

    def apply_freezing(self):
        """Freeze ``frozen_modules()``: the constructor's last step, and again
        after every ``.train()``."""
        for frozen in self.frozen_modules():
            if isinstance(frozen, nn.Parameter):
                frozen.requires_grad_(False)
                continue
            frozen.eval()
            for param in frozen.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self.apply_freezing()  # frozen modules stay in eval mode (BN, dropout)
        return self

    # ---- pretrained weights ----------------------------------------------------
    def resize_loaded(self, name: str, value: torch.Tensor,
                      shape) -> Optional[torch.Tensor]:
        """A checkpoint tensor for ``name`` whose shape is not this backbone's
        ``shape``, resized to it (a table made for another image or window
        size), or None when it cannot be (a mismatch). Families with such
        tables override."""
        return None

    def init_weights(self):
        """A ``Pretrained`` init_cfg loads through ``steps_mm.models.pretrained``
        (explicit key maps, errors on missing keys and shape mismatches, one report
        line) instead of mmengine's silent ``load_checkpoint(strict=False)``; a
        ``SelectFromTwin`` init_cfg selects from the twin's checkpoint
        (``pretrained.selection``)."""
        if not (init_selected(self) or init_pretrained(self)):
            super().init_weights()

    # ---- layer-wise learning-rate decay ----------------------------------------
    def depth_units(self) -> Iterator[Tuple[str, int, str]]:
        """The backbone's modules in forward order, as ``(kind, stage, module
        name)``: kind ``'stem'`` (depth 0), ``'block'`` (the next depth) or
        ``'downsample'`` (the depth of the block after it). Families override."""
        raise NotImplementedError(f'{type(self).__name__} lists no depth units')

    def _depth_table(self) -> Tuple[Dict[str, Tuple[int, int]], int, int]:
        """module name -> (layer id, stage id); the numbers of blocks and stages."""
        table, blocks, stages = {}, 0, 0
        for kind, stage, module in self.depth_units():
            blocks += kind == 'block'
            layer = 0 if kind == 'stem' else blocks + (kind == 'downsample')
            # stage ids as the official ConvNeXt stage-wise recipe: stem and
            # downsampling 0, the blocks of stage i at i + 1
            table[module] = (layer, stage + 1 if kind == 'block' else 0)
            stages = max(stages, stage + 1)
        return table, blocks, stages

    def _depth_of(self, param_name: str, prefix: str, which: int) -> Tuple[int, int]:
        table, blocks, stages = self._depth_table()
        last = (blocks, stages)[which] + 1  # output norms, and what follows
        if param_name.startswith(prefix):
            name = param_name[len(prefix):]
            for module, ids in table.items():
                if name == module or name.startswith(module + '.'):
                    return ids[which], last + 1
        return last, last + 1

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(layer id, number of layer ids)`` of a parameter (mmpretrain's
        contract): the stem (patch embedding, class token, position embedding) is
        0, blocks count 1, 2, ... in forward order across stages and steps,
        downsampling shares the id of the block after it, and the output norms and
        every name not starting with ``prefix`` (neck, heads) get the last id."""
        return self._depth_of(param_name, prefix, 0)

    def get_stage_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(stage id, number of stage ids)``, as ``get_layer_depth`` for
        stage-wise decay: stem and downsampling 0, the blocks of stage i at
        i + 1, output norms and what follows the backbone last."""
        return self._depth_of(param_name, prefix, 1)

    # ---- metadata --------------------------------------------------------------
    @property
    def feature_info(self) -> List[dict]:
        """timm-style metadata of the outputs: channels, stride and module."""
        return [dict(num_chs=self.stage_channels[i], reduction=self.stage_strides[i],
                     module=f'stages.{i}') for i in self.out_indices]

    @property
    def out_channels(self) -> List[int]:
        return [info['num_chs'] for info in self.feature_info]

    @property
    def out_strides(self) -> List[int]:
        return [info['reduction'] for info in self.feature_info]


def dense_outputs(outs) -> tuple:
    """The backbone's outputs as contiguous (NCHW) tensors. LayerNorm over
    channels, the channels-last mode and ViT's token grid leave NHWC strides,
    which convolutions accept but mmcv's RoIAlign (Mask R-CNN's RoI heads) reads
    as NCHW memory: silently wrong features, a detector that cannot learn."""
    return tuple(out.contiguous() for out in outs)


def _channels_last_input(module, args):
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])


def heads_problem(heads: Dict[int, int], width: int):
    """Why ``heads`` cannot serve blocks of ``width``, or None."""
    if width not in heads:
        return (f'no attention heads given for width {width}; add {width}: '
                f'<heads> to the arch heads {heads}')
    if not isinstance(heads[width], int) or heads[width] <= 0 or width % heads[width]:
        divisors = [d for d in range(1, width + 1) if width % d == 0]
        best = min(divisors, key=lambda d: abs(d - width / 32))  # Swin: head dim 32
        return (f'heads {heads[width]} do not divide width {width}; give a '
                f'divisor of {width}, e.g. {best} (head dim {width // best})')
    return None
