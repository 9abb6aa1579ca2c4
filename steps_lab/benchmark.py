"""The models ``tools/benchmark.py`` compares, one training or inference step of
each, and a group's comparison (throughput ratios, peak memory, op breakdown).

Backbone mode: every named backbone of ours (``steps_mm.models.named_backbones``:
``Swin-T``, ``Steps-Swin-T``...; each stage's NCHW map as output) and the peers a
user would pick, on random images. Config mode: whole models built from configs
(Mask R-CNN, UperNet) on synthetic samples. A name may carry options after
``+``: ``explicit`` (matmul + softmax attention instead of the fused kernel),
``cl`` (channels_last input and weights), ``compile`` (torch.compile of the
backbone)."""
import contextlib
import importlib
import os.path as osp
from typing import Callable, Dict, List, Tuple

import torch

from steps_mm.models import BACKBONES, named_backbones
from steps_mm.analysis import timing
from steps_mm.analysis.configs import build_model

#: peers, as mmdet / mmseg build them for dense prediction, with the settings
#: that change the work of a training step made equal to ours (mmdet's Swin
#: defaults to drop path 0.1, its ResNet to BatchNorm frozen in eval mode):
#: name -> (backbone config, the model of ours it is the peer of)
PEERS = {
    'mmdet-Swin-T': (dict(type='mmdet.SwinTransformer', embed_dims=96,
                          depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                          out_indices=(0, 1, 2, 3), drop_path_rate=0.), 'Swin-T'),
    'mmdet-ResNet-50': (dict(type='mmdet.ResNet', depth=50, norm_eval=False),
                        'ResNet-50'),
    'mmseg-ViT-S': (dict(type='mmseg.VisionTransformer', img_size=224, embed_dims=384,
                         num_layers=12, num_heads=6, final_norm=True), 'DeiT-S'),
}
#: config mode: name -> config file (``mmdet::`` / ``mmseg::``: the stock ones),
#: relative to the repository root
CONFIGS = {
    'MaskRCNN-Swin-T': 'configs/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    'MaskRCNN-Steps-Swin-T': 'configs/mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py',
    'MaskRCNN-mmdet-Swin-T': 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    'MaskRCNN-R50': 'configs/mask-rcnn_r50_fpn_1x_coco.py',
    'MaskRCNN-Steps-R50': 'configs/mask-rcnn_steps-r50_fpn_1x_coco.py',
    'MaskRCNN-mmdet-R50': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'UperNet-DeiT-S': 'configs/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py',
    'UperNet-Steps-DeiT-S':
        'configs/vit_steps-deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py',
    'UperNet-mmseg-ViT-S':
        'mmseg::vit/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py',
}
CONFIG_GROUPS = [['MaskRCNN-Swin-T', 'MaskRCNN-Steps-Swin-T', 'MaskRCNN-mmdet-Swin-T'],
                 ['UperNet-DeiT-S', 'UperNet-Steps-DeiT-S', 'UperNet-mmseg-ViT-S']]
SIZES = {'MaskRCNN': (800, 1333), 'UperNet': (512, 512)}  # (H, W) by model kind
OPTIONS = ('explicit', 'cl', 'compile')


def backbone_models() -> Dict[str, dict]:
    """Backbone mode's models: ours, then the peers."""
    return dict(named_backbones(), **{name: cfg for name, (cfg, _) in PEERS.items()})


def default_groups(mode: str) -> List[List[str]]:
    """The groups timed when none are given, the baseline first: per family, its
    default arch's baseline, Steps model and peers; or the config groups."""
    if mode == 'config':
        return CONFIG_GROUPS
    groups = []
    for cls in BACKBONES:
        base = cls.model_name(cls.default_arch())
        groups.append([base, cls.model_name(cls.default_arch(), 'steps')] +
                      [name for name, (_, twin) in PEERS.items() if twin == base])
    return groups


class Bench:
    """A model and its step: ``step(train, autocast)`` runs one forward (and
    backward) pass."""

    def __init__(self, name: str, model: torch.nn.Module,
                 run: Callable[[bool], torch.Tensor], context=contextlib.nullcontext):
        self.name, self.model, self.run, self.context = name, model, run, context

    def step(self, train: bool, autocast) -> None:
        self.model.train(train)
        with self.context(), autocast, torch.set_grad_enabled(train):
            loss = self.run(train)
        if train:
            loss.backward()
            self.model.zero_grad(set_to_none=True)


def split_name(name: str) -> Tuple[str, List[str]]:
    base, *options = name.split('+')
    bad = [o for o in options if o not in OPTIONS]
    if bad:
        raise ValueError(f'unknown option(s) {bad} in {name!r}; options: {OPTIONS}')
    return base, options


def check_name(name: str, mode: str) -> Tuple[str, List[str]]:
    """``(model, options)`` of a name of ``mode`` (``backbone`` or ``config``);
    a ValueError naming the choices when there is no such model or option."""
    base, options = split_name(name)
    table = backbone_models() if mode == 'backbone' else CONFIGS
    if base not in table:
        raise ValueError(f'unknown {mode} model {base!r}; choose from {sorted(table)}')
    return base, options


def build(name: str, mode: str, batch: int, device: str, size=None,
          root: str = '.') -> Bench:
    """The ``Bench`` of a model name of ``mode`` (``backbone`` or ``config``);
    ``size``: the image side (default: 224 for backbones, ``SIZES`` for
    configs); ``root``: the repository, where the configs are."""
    base, options = check_name(name, mode)
    table = backbone_models() if mode == 'backbone' else CONFIGS
    if mode == 'backbone':
        size = size or 224
        return _backbone_bench(name, table[base], options, batch, (size, size), device)
    return _config_bench(name, _config_path(table[base], root), options, batch, device,
                         (size, size) if size else SIZES[base.split('-')[0]])


def _backbone_bench(name, cfg, options, batch, size, device) -> Bench:
    scope, _, type_name = cfg['type'].rpartition('.')
    registry = importlib.import_module(f'{scope or "steps_mm"}.registry').MODELS
    model = registry.build(dict(cfg, type=type_name)).to(device)
    images = torch.randn(batch, 3, *size, device=device)
    if 'cl' in options:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    net = torch.compile(model) if 'compile' in options else model

    def run(train):
        return sum(out.float().mean() for out in net(images))
    return Bench(name, model, run, _attention_context(options))


def _config_bench(name, path, options, batch, device, size) -> Bench:
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    cfg = Config.fromfile(path)
    for preprocessor in (cfg.get('data_preprocessor'), cfg.model.get('data_preprocessor')):
        if preprocessor and preprocessor.get('size'):  # mmseg pads to its crop size
            preprocessor.size = tuple(size)
    model = build_model(cfg, pretrained=False)  # nothing is downloaded
    if device == 'cpu':
        model = revert_sync_batchnorm(model)
    model = model.to(device)
    if 'cl' in options:
        model = model.to(memory_format=torch.channels_last)
    if 'compile' in options:
        model.backbone.compile()
    data = (_seg_inputs if cfg.get('default_scope') == 'mmseg' else _det_inputs)(
        batch, *size)

    def run(train):
        batch_data = model.data_preprocessor(data, train)
        if train:
            return model.parse_losses(model(**batch_data, mode='loss'))[0]
        outs = model(**batch_data, mode='tensor')
        return sum(o.float().sum() for o in _tensors(outs))
    return Bench(name, model, run, _attention_context(options))


def _config_path(path: str, root: str) -> str:
    """A file of the repository, or ``mmdet::x.py``: a config mmdet ships."""
    if '::' not in path:
        return osp.join(root, path)
    package, rel = path.split('::')
    package_dir = osp.dirname(importlib.import_module(package).__file__)
    return osp.join(package_dir, '.mim', 'configs', rel)


def _det_inputs(batch: int, h: int, w: int) -> dict:
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch, [[3, h, w]] * batch, num_items=[5] * batch,
                          with_mask=True)


def _seg_inputs(batch: int, h: int, w: int) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, h, w),
                                                         generator=gen))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
              for _ in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def _tensors(outs):
    if isinstance(outs, torch.Tensor):
        return [outs]
    if isinstance(outs, dict):
        outs = list(outs.values())
    return [t for o in outs for t in _tensors(o)] if isinstance(outs, (list, tuple)) \
        else []


def _attention_context(options):
    if 'explicit' not in options:
        return contextlib.nullcontext
    from steps_mm.models.layers import explicit_attention
    return explicit_attention


def run_group(names: List[str], baseline: str, args, progress) -> List[dict]:
    """Rows of a group's models, per precision: images/s and the ratio to
    ``baseline`` of each timed mode, and what ``args`` asks for besides (peak
    memory, op breakdown, op count, profile). ``args``: tools/benchmark.py's
    options (mode, batch, device, size, precision, train, repeats, warmup,
    iters, memory, breakdown, count_ops, profile, root)."""
    torch.manual_seed(0)
    benches = [build(n, args.mode, args.batch, args.device, args.size, args.root)
               for n in names]
    rows = []
    for precision in args.precision:
        autocast = torch.autocast(
            args.device.split(':')[0], enabled=precision == 'amp',
            dtype=torch.float16 if args.device.startswith('cuda') else torch.bfloat16)
        group = {n: dict(model=n, baseline=baseline, precision=precision) for n in names}
        for key in timed_modes(args.train):
            train = key == 'train'
            steps = {b.name: (lambda b=b: b.step(train, autocast)) for b in benches}
            medians = timing.interleaved_medians(
                steps, args.repeats, args.warmup, args.iters, args.device,
                lambda message: progress(f'{key} {message}'))
            for bench in benches:
                row, step = group[bench.name], steps[bench.name]
                row[f'{key}_img_s'] = args.batch / medians[bench.name]
                row[f'{key}_ratio'] = medians[baseline] / medians[bench.name]
                if args.memory:
                    row[f'{key}_peak_mib'] = timing.peak_memory(step, args.device) / 2**20
                if args.breakdown:
                    row[f'{key}_breakdown'] = timing.breakdown(step)
                if args.count_ops:
                    row[f'{key}_ops'] = timing.count_ops(step)
                if args.profile:
                    print(f'\n{bench.name}, {key}, {precision}: top {args.profile} ops\n'
                          + timing.profile_table(step, args.profile), flush=True)
        rows += group.values()
    return rows


def timed_modes(train: bool) -> List[str]:
    """The timed modes: inference, and training unless ``train`` is off."""
    return ['infer', 'train'] if train else ['infer']


def breakdown_table(rows: List[dict], key: str) -> str:
    """Markdown: per op category, each model's ms and its ratio to the
    baseline's (``rows``: one group at one precision)."""
    rows = [r for r in rows if f'{key}_breakdown' in r]
    head = ['category'] + [r['model'] for r in rows]
    lines = [f'{key}, {rows[0]["precision"]}, ms per step by op category (x baseline):',
             '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]

    def value(row, cat):
        ms = row[f'{key}_breakdown']
        return sum(ms.values()) if cat == 'total' else ms[cat]

    bases = [next(b for b in rows if b['model'] == r['baseline']) for r in rows]
    for cat in timing.CATEGORIES + ('total',):
        cells = [cat]
        for r, base in zip(rows, bases):
            mine, base_value = value(r, cat), value(base, cat)
            cells.append(f'{mine:.0f}' + (f' ({mine / base_value:.2f}x)'
                                          if base_value and r is not base else ''))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
