#!/usr/bin/env python
"""Speed and peak memory of Steps models against their baselines and peers,
measured in one process, interleaved (A B C A B C ...), median after warm-up.

Backbone mode (default) times bare backbones on random 224x224 images; config
mode (``--mode config``) times whole models built from configs (Mask R-CNN at
800x1333, UperNet at 512x512) on synthetic samples. Each *group* is timed on its
own; ratios are to the group's first model (``--baseline`` picks another).

    python tools/benchmark.py                          # the backbone groups, CPU
    python tools/benchmark.py --mode config            # Mask R-CNN, UperNet
    python tools/benchmark.py --models Swin-T,Steps-Swin-T,Swin-T+explicit
    python tools/benchmark.py --device cuda            # fp32 and fp16 autocast
    python tools/benchmark.py --breakdown              # + where the time goes

A model name may carry options after '+': ``+explicit`` (matmul + softmax
attention instead of the fused kernel), ``+cl`` (channels_last input and
weights), ``+compile`` (torch.compile of the backbone). Results go to
``--out``.md / .json / .png (a Markdown table, the raw numbers, a bar plot).
Peak memory is what a step allocates beyond what existed before it: the CUDA
allocator's peak on CUDA; on CPU the running sum of the tensor allocations and
frees that torch's profiler records (one extra, untimed step). ``--breakdown``
sums each op's self time into categories (matmul & conv, attention, copies,
norms, elementwise) and shows them against the baseline's.
"""
import contextlib
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

C, S, R, V = 'StepsConvNeXt', 'StepsSwinTransformer', 'StepsResNet', 'StepsViT'
_DENSE = dict(out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
# Backbone mode: name -> backbone config (ours: every stage's NCHW map; the
# peers as mmdet / mmseg build them for dense prediction, with the settings that
# change the work of a training step made equal to ours: mmdet's Swin defaults
# to drop path 0.1, its ResNet to BatchNorm frozen in eval mode).
BACKBONES = {
    'ConvNeXt-T': dict(type=C, arch='tiny', layout='sequential', **_DENSE),
    'Steps-ConvNeXt-T': dict(type=C, arch='tiny', layout='steps', **_DENSE),
    'Swin-T': dict(type=S, arch='tiny', layout='sequential', **_DENSE),
    'Steps-Swin-T': dict(type=S, arch='tiny', layout='steps', **_DENSE),
    'mmdet-Swin-T': dict(type='mmdet.SwinTransformer', embed_dims=96,
                         depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                         window_size=7, out_indices=(0, 1, 2, 3),
                         drop_path_rate=0.),
    'ResNet-50': dict(type=R, depth=50, layout='sequential'),
    'Steps-ResNet-50': dict(type=R, depth=50, layout='steps'),
    'mmdet-ResNet-50': dict(type='mmdet.ResNet', depth=50, norm_eval=False),
    'DeiT-S': dict(type=V, arch='deit-small', layout='sequential'),
    'Steps-DeiT-S': dict(type=V, arch='deit-small', layout='steps'),
    'mmseg-ViT-S': dict(type='mmseg.VisionTransformer', img_size=224,
                        embed_dims=384, num_layers=12, num_heads=6,
                        final_norm=True),
}
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Config mode: name -> config file (``mmdet::`` / ``mmseg::``: the stock ones).
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
GROUPS = {  # the first model of a group is its baseline
    'backbone': [['ConvNeXt-T', 'Steps-ConvNeXt-T'],
                 ['Swin-T', 'Steps-Swin-T', 'mmdet-Swin-T'],
                 ['ResNet-50', 'Steps-ResNet-50', 'mmdet-ResNet-50'],
                 ['DeiT-S', 'Steps-DeiT-S', 'mmseg-ViT-S']],
    'config': [['MaskRCNN-Swin-T', 'MaskRCNN-Steps-Swin-T', 'MaskRCNN-mmdet-Swin-T'],
               ['UperNet-DeiT-S', 'UperNet-Steps-DeiT-S', 'UperNet-mmseg-ViT-S']],
}
SIZES = {'MaskRCNN': (800, 1333), 'UperNet': (512, 512)}
OPTIONS = ('explicit', 'cl', 'compile')


# ---- building -----------------------------------------------------------------
class Bench:
    """A model and its step: ``step(train)`` runs one forward (and backward)."""

    def __init__(self, name: str, model: torch.nn.Module,
                 run: Callable[[bool], torch.Tensor], context=contextlib.nullcontext):
        self.name, self.model, self.run, self.context = name, model, run, context

    def step(self, train: bool, autocast) -> None:
        """One forward (and backward) step, in train or eval mode."""
        self.model.train(train)
        with self.context(), autocast, torch.set_grad_enabled(train):
            loss = self.run(train)
        if train:
            loss.backward()
            self.model.zero_grad(set_to_none=True)


def _split_name(name: str) -> Tuple[str, List[str]]:
    base, *options = name.split('+')
    bad = [o for o in options if o not in OPTIONS]
    if bad:
        raise SystemExit(f'unknown option(s) {bad} in {name!r}; options: {OPTIONS}')
    return base, options


def _backbone_bench(name: str, cfg: dict, options, batch: int, size: Tuple[int, int],
                    device: str) -> Bench:
    from steps_mm.registry import MODELS as registry
    if cfg['type'].startswith('mmdet.'):
        from mmdet.registry import MODELS as registry
    elif cfg['type'].startswith('mmseg.'):
        from mmseg.registry import MODELS as registry
    cfg = dict(cfg, type=cfg['type'].split('.')[-1])
    model = registry.build(cfg).to(device)
    images = torch.randn(batch, 3, *size, device=device)
    if 'cl' in options:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    net = torch.compile(model) if 'compile' in options else model

    def run(train):
        return sum(out.float().mean() for out in net(images))
    return Bench(name, model, run, _attention_context(options))


def _config_bench(name: str, path: str, options, batch: int, device: str,
                  size=None) -> Bench:
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    import steps_mm  # noqa: F401
    cfg = Config.fromfile(_config_path(path))
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmseg':
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    else:
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(cfg.model)  # no init_weights: nothing is downloaded
    if device == 'cpu':
        model = revert_sync_batchnorm(model)
    model = model.to(device)
    if 'cl' in options:
        model = model.to(memory_format=torch.channels_last)
    if 'compile' in options:
        model.backbone.compile()
    h, w = (size, size) if size else SIZES[name.split('-')[0]]
    data = (_seg_inputs if scope == 'mmseg' else _det_inputs)(batch, h, w)

    def run(train):
        batch_data = model.data_preprocessor(data, train)
        if train:
            losses = model(**batch_data, mode='loss')
            return model.parse_losses(losses)[0]
        outs = model(**batch_data, mode='tensor')
        return sum(o.float().sum() for o in _tensors(outs))
    return Bench(name, model, run, _attention_context(options))


def _config_path(path: str) -> str:
    """A file of this repository, or ``mmdet::x.py``: a config mmdet ships."""
    if '::' not in path:
        return osp.join(_ROOT, path)
    import importlib
    package, rel = path.split('::')
    root = osp.dirname(importlib.import_module(package).__file__)
    return osp.join(root, '.mim', 'configs', rel)


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


def build(name: str, mode: str, batch: int, device: str, size=None) -> Bench:
    """The ``Bench`` of a model name of ``mode``; ``size``: the image side
    (default: 224 for backbones, each config's ``SIZES``)."""
    base, options = _split_name(name)
    table = BACKBONES if mode == 'backbone' else CONFIGS
    if base not in table:
        raise SystemExit(f'unknown {mode} model {base!r}; choose from {sorted(table)}')
    if mode == 'backbone':
        size = size or 224
        return _backbone_bench(name, table[base], options, batch, (size, size), device)
    return _config_bench(name, table[base], options, batch, device, size)


# ---- measuring ----------------------------------------------------------------
def peak_memory(bench: Bench, train: bool, autocast, device: str) -> int:
    """Bytes a step allocates at its peak beyond what existed before it."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        bench.step(train, autocast)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        bench.step(train, autocast)
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        # ops carry their own net allocations; '[memory]' events are the frees
        # and allocations outside any op (tensors Python let go of)
        live += event.cpu_memory_usage if event.name == '[memory]' \
            else event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def profile_table(bench: Bench, train: bool, autocast, top: int) -> str:
    """The ``top`` ops of one step by self CPU time (where the time goes)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        bench.step(train, autocast)
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=top,
                                     max_name_column_width=48)


# Op categories of ``--breakdown``: what the time of a step is spent on.
_MATMUL = ('mm', 'addmm', 'bmm', 'baddbmm', 'convolution_backward',
           'mkldnn_convolution', '_slow_conv2d_forward', '_slow_conv2d_backward',
           'cudnn_convolution', '_convolution_depthwise')
_COPY = ('copy_', 'cat', 'clone', 'contiguous', 'index_select', 'roll',
         'constant_pad_nd', 'index_add_', 'index', 'repeat')
CATEGORIES = ('matmul & conv', 'attention', 'copies & layout', 'norms',
              'activations & elementwise')


def op_category(name: str) -> str:
    """The ``CATEGORIES`` entry of an aten op (``aten::mm`` -> 'matmul & conv')."""
    op = name.split('::')[-1]
    if op in _MATMUL or op.startswith(('_slow_conv', 'thnn_conv')):
        return 'matmul & conv'
    if 'attention' in op or op.startswith(('_softmax', 'softmax')):
        return 'attention'
    if op in _COPY:
        return 'copies & layout'
    if 'norm' in op:
        return 'norms'
    return 'activations & elementwise'


def breakdown(bench: Bench, train: bool, autocast, steps: int = 3) -> Dict[str, float]:
    """Milliseconds of self CPU time per op category, the median of ``steps``
    profiled steps (where the time goes, comparable across models)."""
    from torch.profiler import ProfilerActivity, profile
    runs = []
    for _ in range(steps):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            bench.step(train, autocast)
        ms = dict.fromkeys(CATEGORIES, 0.)
        for event in prof.key_averages():
            if event.key.startswith('aten::'):
                ms[op_category(event.key)] += event.self_cpu_time_total / 1e3
        runs.append(ms)
    return {c: statistics.median(r[c] for r in runs) for c in CATEGORIES}


def breakdown_table(rows: List[dict], key: str) -> str:
    """Markdown: per category, each model's ms and its ratio to the baseline's
    (``rows``: one group at one precision)."""
    rows = [r for r in rows if f'{key}_breakdown' in r]
    head = ['category'] + [r['model'] for r in rows]
    lines = [f'{key}, {rows[0]["precision"]}, ms per step by op category (x baseline):',
             '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]

    def value(row, cat):
        ms = row[f'{key}_breakdown']
        return sum(ms.values()) if cat == 'total' else ms[cat]

    bases = [next(b for b in rows if b['model'] == r['baseline']) for r in rows]
    for cat in CATEGORIES + ('total',):
        cells = [cat]
        for r, base in zip(rows, bases):
            mine, base_value = value(r, cat), value(base, cat)
            cells.append(f'{mine:.0f}' + (f' ({mine / base_value:.2f}x)'
                                          if base_value and r is not base else ''))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def count_ops(bench: Bench, train: bool, autocast) -> int:
    """The aten ops one step dispatches (forward and backward, views
    included): each costs host time, and each that computes launches a GPU
    kernel, which is what bounds a GPU step whose kernels have little work."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Counter.count += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        bench.step(train, autocast)
    return Counter.count


def measure(benches: List[Bench], train: bool, args, autocast, progress) -> Dict:
    """Median seconds per image of each model, timed interleaved."""
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    for bench in benches:
        for _ in range(args.warmup):
            bench.step(train, autocast)
    times = {b.name: [] for b in benches}
    for r in range(args.repeats):
        for bench in benches:
            sync()
            start = time.perf_counter()
            for _ in range(args.iters):
                bench.step(train, autocast)
            sync()
            times[bench.name].append((time.perf_counter() - start) / args.iters)
            progress(f'{"train" if train else "infer"} repeat {r + 1}/{args.repeats} '
                     f'{bench.name}: {times[bench.name][-1]:.3f} s/step')
    return {name: statistics.median(t) for name, t in times.items()}


def run_group(names: List[str], baseline: str, args, progress) -> List[dict]:
    """Rows of the group's models, per precision: img/s, ratio, peak memory."""
    torch.manual_seed(0)
    benches = [build(n, args.mode, args.batch, args.device, args.size) for n in names]
    rows = []
    for precision in args.precision:
        autocast = torch.autocast(
            args.device.split(':')[0], enabled=precision == 'amp',
            dtype=torch.float16 if args.device.startswith('cuda') else torch.bfloat16)
        group = {n: dict(model=n, baseline=baseline, precision=precision)
                 for n in names}
        for key in modes(args):
            train = key == 'train'
            medians = measure(benches, train, args, autocast, progress)
            for bench in benches:
                row = group[bench.name]
                row[f'{key}_img_s'] = args.batch / medians[bench.name]
                row[f'{key}_ratio'] = medians[baseline] / medians[bench.name]
                if args.memory:
                    row[f'{key}_peak_mib'] = peak_memory(
                        bench, train, autocast, args.device) / 2 ** 20
                if args.breakdown:
                    row[f'{key}_breakdown'] = breakdown(bench, train, autocast)
                if args.count_ops:
                    row[f'{key}_ops'] = count_ops(bench, train, autocast)
                if args.profile:
                    print(f'\n{bench.name}, {key}, {precision}: top {args.profile} '
                          f'ops\n' + profile_table(bench, train, autocast, args.profile),
                          flush=True)
        rows += group.values()
    return rows


# ---- reporting ----------------------------------------------------------------
def modes(args) -> List[str]:
    """The timed modes: inference, and training unless ``--no-train``."""
    return ['infer', 'train'] if args.train else ['infer']


def markdown(rows: List[dict], args) -> str:
    head = ['model', 'baseline', 'precision']
    for m in modes(args):
        head += [f'{m} img/s', f'{m} ratio'] + ([f'{m} peak MiB'] if args.memory else []) \
            + ([f'{m} ops'] if args.count_ops else [])
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        cells = [row['model'], row['baseline'], row['precision']]
        for m in modes(args):
            cells += [f'{row[f"{m}_img_s"]:.2f}', f'{row[f"{m}_ratio"]:.2f}']
            if args.memory:
                cells.append(f'{row[f"{m}_peak_mib"]:.0f}')
            if args.count_ops:
                cells.append(f'{row[f"{m}_ops"]:,}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(rows: List[dict], args, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    timed = modes(args)
    fig, ax = plt.subplots(figsize=(0.9 * len(rows) + 2, 4))
    width = 0.8 / len(timed)
    for i, m in enumerate(timed):
        ax.bar([j + width * i for j in range(len(rows))],
               [row[f'{m}_ratio'] for row in rows], width=width, label=m)
    ax.axhline(1, color='k', lw=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))],
                  [f"{row['model']} {row['precision']}" for row in rows],
                  rotation=30, ha='right')
    ax.set(ylabel='throughput / baseline', title=describe(args))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def describe(args) -> str:
    device = torch.cuda.get_device_name() if args.device.startswith('cuda') \
        else f'cpu, {torch.get_num_threads()} threads'
    size = f', {args.size}x{args.size}' if args.size else (
        ', 224x224' if args.mode == 'backbone' else '')
    return (f'{args.mode} mode, {device}, batch {args.batch}{size}, '
            f'median of {args.repeats}')


def parse_args(argv=None):
    from steps_mm.report import tool_parser
    parser = tool_parser(__doc__)
    parser.add_argument('--mode', choices=('backbone', 'config'), default='backbone')
    parser.add_argument('--models', help='comma-separated models timed as one group, '
                        'groups separated by ";" (default: the groups of --mode); '
                        'backbone: '
                        f'{", ".join(BACKBONES)}; config: {", ".join(CONFIGS)}')
    parser.add_argument('--baseline', help='ratios to this model (default: the '
                        'first of each group)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, help='default: 8 on CPU, 64 on CUDA '
                        '(config mode: 2; UperNet trains with BN, which needs 2)')
    parser.add_argument('--size', type=int,
                        help='square image side (default: 224 for backbones, '
                        '800x1333 Mask R-CNN, 512x512 UperNet); a small one '
                        '(--size 64 --batch 1) weighs the per-op host overhead, '
                        'which bounds a GPU step whose kernels have little work')
    parser.add_argument('--iters', type=int, default=1, help='steps per timing')
    parser.add_argument('--repeats', type=int, default=5, help='timings per model')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--precision', choices=('fp32', 'amp', 'both'),
                        help='amp: autocast to fp16 on CUDA, bf16 on CPU '
                        '(default: fp32 on CPU, both on CUDA)')
    parser.add_argument('--no-train', dest='train', action='store_false',
                        help='inference only')
    parser.add_argument('--no-memory', dest='memory', action='store_false',
                        help='skip the peak-memory step')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='print the N ops of each step that take most time')
    parser.add_argument('--breakdown', action='store_true',
                        help='print where the time of a step goes: ms per op '
                        'category (matmul & conv, attention, copies, norms, '
                        'elementwise), median of 3 profiled steps')
    parser.add_argument('--count-ops', action='store_true',
                        help='count the aten ops a step dispatches (their host '
                        'cost and kernel launches bound a GPU step with little '
                        'work per kernel)')
    parser.add_argument('--out', default='work_dirs/benchmark/result',
                        help='prefix of the .md, .json and .png outputs')
    args = parser.parse_args(argv)
    gpu = args.device.startswith('cuda')
    precision = args.precision or ('both' if gpu else 'fp32')
    args.precision = ['fp32', 'amp'] if precision == 'both' else [precision]
    if args.batch is None:
        args.batch = 2 if args.mode == 'config' else (64 if gpu else 8)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
    groups = [g.split(',') for g in args.models.split(';')] if args.models \
        else GROUPS[args.mode]
    print(describe(args), flush=True)
    start = time.time()

    def progress(message):
        print(f'  [{time.time() - start:6.0f} s] {message}', file=sys.stderr, flush=True)

    rows, breakdowns = [], []
    for names in groups:
        baseline = args.baseline if args.baseline in names else names[0]
        group_rows = run_group(names, baseline, args, progress)
        rows += group_rows
        if args.breakdown:
            for precision in args.precision:
                same = [r for r in group_rows if r['precision'] == precision]
                breakdowns += [breakdown_table(same, key) for key in modes(args)]
    table = '\n\n'.join([markdown(rows, args)] + breakdowns)
    print(table)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out + '.md', 'w') as f:
        f.write(f'{describe(args)}\n\n{table}\n')
    with open(args.out + '.json', 'w') as f:
        json.dump(dict(setup=describe(args), torch=torch.__version__, rows=rows,
                       args=vars(args)), f, indent=1)
    plot(rows, args, args.out + '.png')
    print(f'wrote {args.out}.md, .json, .png', flush=True)


if __name__ == '__main__':
    main()
