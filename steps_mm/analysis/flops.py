"""FLOPs and parameters by the papers' protocol, without a dataset.

- FLOPs are multiply-accumulates (fvcore's and the StepsNet paper's convention),
  attention matmuls included, counted by mmengine's FlopAnalyzer with the
  handles below (the fused attention op, mmcv's RoIAlign, bicubic resizing).
- Detection: every COCO model at 1280x800 (H=800, W=1280). Mask R-CNN and
  Cascade Mask R-CNN with the test-time budget of 1000 proposals (through every
  cascade stage's box head) and 100 detections (through every mask head), fed as
  fixed boxes so that the count does not depend on what an untrained RPN
  proposes; DINO and Mask2Former up to their heads' outputs.
- Segmentation: UperNet at 512x2048, decode head only (the auxiliary head is a
  training-time head and is left out, as in the papers); Mask2Former at its
  512x512 crop, its head's per-class logits included.
- mmcv's multi-scale deformable attention: 4 MACs per bilinear sample and 1 per
  sample in the attention-weighted sum (``counted_deformable_attention``).
- Classification and the Table-1 backbone mode: 224x224, 1000-class head.
- Elementwise ops, reductions, comparisons and data movement count zero, as in
  the papers; any other operator without a counter raises ``UncountedOperators``
  naming it, instead of under-counting silently.
"""
import contextlib
import inspect
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from ..models import StepsImageClassifier, StepsStage
from ..registry import MODELS
from .markdown import markdown_table
from .configs import build_from_config
from .counts import count_params

#: the det/seg papers' input sizes, (H, W)
DEFAULT_SHAPES = {'mmdet': (800, 1280), 'mmseg': (512, 2048), 'mmpretrain': (224, 224)}
TABLE1_SHAPE = (224, 224)
# mmdet's Mask R-CNN test budget; its RoI head's forward takes the first 100 of
# them through the mask head
NUM_PROPOSALS = 1000
NUM_MASKS = 100

#: ops with no multiply-accumulate under the papers' convention (fvcore's too):
#: elementwise arithmetic and activations, reductions, comparisons, indexing and
#: data movement. An op outside this set and without a counter is an error.
ZERO_MAC_OPS = frozenset('aten::' + op for op in '''
    add add_ sub sub_ rsub mul mul_ div div_ neg abs pow sqrt rsqrt exp log log2
    sigmoid sigmoid_ tanh relu relu_ gelu silu hardtanh leaky_relu softmax
    log_softmax clamp_min clamp_max round floor ceil sign
    mean sum max min amax argmax argmin topk sort cumsum all any
    max_pool2d max_pool2d_with_indices lt le ne where logical_and logical_or
    masked_fill_ fill_ zero_ clone repeat expand_as view_as index_select
    new_ones ones_like empty_like lift_fresh scalar_tensor meshgrid linspace
    pad bernoulli_ dim numel feature_dropout dropout_ alpha_dropout unflatten
    sin cos flip _shape_as_tensor
    '''.split())


class InputTooSmall(ValueError):
    """The input size leaves the model's head fewer candidates than it selects
    (DINO picks its queries among the encoder's tokens)."""


class UncountedOperators(RuntimeError):
    """Operators that do arithmetic but have no FLOP counter."""


def sdpa_flop_jit(inputs, outputs) -> int:
    """MACs of ``aten::scaled_dot_product_attention``: ``q @ k^T`` and
    ``attn @ v``, as the explicit matmuls would count (the softmax, like every
    elementwise op, counts zero). mmengine counts the fused op as zero without it."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for dim in q[:-2]:
        batch *= dim
    n, d, m, dv = q[-2], q[-1], k[-2], v[-1]
    return batch * n * m * (d + dv)


def roi_align_flop_jit(inputs, outputs) -> int:
    """mmcv's RoIAlign: a bilinear sample (4 MACs) per output element, one
    sample per bin (``sampling_ratio=0`` adapts the count to each box, which a
    trace cannot see), like fvcore's ``grid_sampler``."""
    from mmengine.analysis.jit_handles import get_shape
    numel = 1
    for dim in get_shape(outputs[0]):
        numel *= dim
    return 4 * numel


def baddbmm_flop_jit(inputs, outputs) -> int:
    """``beta * input + alpha * batch1 @ batch2`` (nn.MultiheadAttention's
    scores with a mask): the batched matmul's MACs, as ``aten::bmm``."""
    from mmengine.analysis.jit_handles import get_shape
    (b, n, k), m = get_shape(inputs[1]), get_shape(inputs[2])[-1]
    return b * n * k * m


def bicubic_flop_jit(inputs, outputs) -> int:
    """A 4x4-tap bicubic sample per output element (ViT position embeddings
    resized to another grid); fvcore counts bilinear as 4 the same way."""
    return 4 * roi_align_flop_jit(inputs, outputs)


#: FlopAnalyzer handles beyond mmengine's own: ops it would count as zero or not
#: at all
HANDLES = {
    'aten::scaled_dot_product_attention': sdpa_flop_jit,
    'prim::PythonOp.RoIAlignFunction': roi_align_flop_jit,
    'aten::upsample_bicubic2d': bicubic_flop_jit,
    'aten::baddbmm': baddbmm_flop_jit,
}


def _deformable_attention(value, shapes, locations, weights):
    """mmcv's ``multi_scale_deformable_attn_pytorch`` (its CPU path), with the
    weighing of the sampled values written as a matmul: the same values, and the
    analyzer counts its MAC per sample, as it counts ``attn @ v`` (an elementwise
    product and a sum would count zero). The bilinear sampling is mmengine's
    ``grid_sampler`` count, 4 MACs per sampled value."""
    import torch.nn.functional as F
    batch, _, heads, dims = value.shape
    _, queries, _, levels, points, _ = locations.shape
    sizes = [(int(h), int(w)) for h, w in shapes]
    grids = 2 * locations - 1
    sampled = []
    for level, (part, (h, w)) in enumerate(zip(value.split([h * w for h, w in sizes], 1),
                                              sizes)):
        maps = part.flatten(2).transpose(1, 2).reshape(batch * heads, dims, h, w)
        grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(maps, grid, mode='bilinear', padding_mode='zeros',
                                     align_corners=False))
    # (B*heads, dims, queries, 1, levels*points) @ (B*heads, 1, queries, levels*points, 1)
    samples = torch.stack(sampled, dim=-2).flatten(-2).unsqueeze(-2)
    weights = weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points, 1)
    out = torch.matmul(samples, weights).view(batch, heads * dims, queries)
    return out.transpose(1, 2).contiguous()


@contextlib.contextmanager
def counted_deformable_attention():
    """mmcv's multi-scale deformable attention (DINO, Mask2Former's pixel decoder)
    through ``_deformable_attention`` while counting."""
    try:
        from mmcv.ops import multi_scale_deform_attn as msda
    except ImportError:  # no mmcv: no deformable attention to count
        yield
        return
    original = msda.multi_scale_deformable_attn_pytorch
    msda.multi_scale_deformable_attn_pytorch = _deformable_attention
    try:
        yield
    finally:
        msda.multi_scale_deformable_attn_pytorch = original


# ---- the traced wrappers -----------------------------------------------------------
class _Parts(nn.Module):
    """Registers ``model``'s children under their own names (``backbone``,
    ``neck``, ``roi_head``...), so that counts by module read as in the model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self._model = (model,)  # a tuple: not registered, no ``model.`` prefix
        for name, child in model.named_children():
            self.add_module(name, child)
        # the model's own tensors (DETR's level embedding): the trace takes
        # registered tensors only
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in model.named_buffers(recurse=False):
            self.register_buffer(name, buffer)
        self.training = model.training

    def train(self, mode: bool = True):
        """The model's own flag too (DINO reads it: denoising queries in training)."""
        self.model.train(mode)
        return super().train(mode)

    @property
    def model(self):
        return self._model[0]


class TensorMode(_Parts):
    """``model(images, mode='tensor')``: an mmseg EncoderDecoder (decode head
    only), an mmpretrain classifier, a one-stage detector."""

    def forward(self, images):
        return self.model(images, mode='tensor')


class TwoStageDetector(_Parts):
    """Backbone, neck, the RPN head's convolutions and the RoI head on
    ``NUM_PROPOSALS`` fixed boxes (NMS and box decoding are not arithmetic the
    papers count, and an untrained RPN's proposals would vary)."""

    def __init__(self, model: nn.Module, image_shape: Tuple[int, int]):
        super().__init__(model)
        h, w = image_shape
        gen = torch.Generator().manual_seed(0)
        xy = torch.rand(NUM_PROPOSALS, 2, generator=gen) * torch.tensor([w * .8, h * .8])
        wh = torch.rand(NUM_PROPOSALS, 2, generator=gen) * torch.tensor([w * .2, h * .2])
        wh = wh + 8  # at least 8 px
        self.register_buffer('boxes', torch.cat([xy, xy + wh], 1), persistent=False)

    def forward(self, images):
        from mmengine.structures import InstanceData
        feats = self.model.extract_feat(images)
        rpn_out = self.model.rpn_head(feats)
        if hasattr(self.model.roi_head, 'num_stages'):
            return rpn_out, self.cascade(feats, tuple(images.shape[-2:]))
        proposals = [InstanceData(bboxes=self.boxes)]
        return rpn_out, self.model.roi_head.forward(feats, proposals, None)

    def cascade(self, feats, image_shape):
        """A cascade's test-time heads: the proposals through every stage's box
        head, each stage refining the boxes of the last, and the first
        ``NUM_MASKS`` refined boxes (the test budget of detections) through every
        stage's mask head (mmdet averages their masks)."""
        from mmdet.structures.bbox import bbox2roi
        head = self.model.roi_head
        rois, scores, deltas = head._refine_roi(
            feats, bbox2roi([self.boxes]), [dict(img_shape=image_shape)],
            (len(self.boxes), ))
        masks = []
        if head.with_mask:
            mask_rois = torch.cat(rois)[:NUM_MASKS]
            masks = [head._mask_forward(stage, feats, mask_rois)['mask_preds']
                     for stage in range(head.num_stages)]
        return scores, deltas, masks


class WithImageMetas(_Parts):
    """``model(images, [sample], mode='tensor')`` for mmdet detectors whose forward
    reads the image's metadata (DETR-likes: DINO; MaskFormer / Mask2Former):
    backbone, neck, transformer and heads up to their raw outputs."""

    def forward(self, images):
        from mmdet.structures import DetDataSample
        shape = tuple(images.shape[-2:])
        sample = DetDataSample(metainfo=dict(img_shape=shape, batch_input_shape=shape,
                                             pad_shape=shape))
        if hasattr(self.model, 'panoptic_head'):  # MaskFormer's ``_forward``, but
            # calling the head (not its ``forward``), so that its part holds its ops
            return self.panoptic_head(self.model.extract_feat(images), [sample])
        return self.model(images, [sample], mode='tensor')


class _Predict(nn.Module):
    """``head.predict`` as a module call, so that the ops of the whole prediction
    count in the head's part."""

    def __init__(self, head: nn.Module, test_cfg):
        super().__init__()
        self.head, self.test_cfg = head, test_cfg

    def forward(self, feats, metas):
        return self.head.predict(feats, metas, self.test_cfg)


class SegmenterPredict(_Parts):
    """An mmseg segmenter whose decode head needs the image's metadata
    (Mask2Former): its decode head's prediction, the per-class logits at the
    input size (queries' class scores times their masks), the auxiliary head left
    out."""

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.decode_head = _Predict(model.decode_head, model.test_cfg)

    def forward(self, images):
        shape = tuple(images.shape[-2:])
        metas = [dict(img_shape=shape, pad_shape=shape, batch_input_shape=shape)]
        return self.decode_head(self.model.extract_feat(images), metas)


def _needs_image_metas(model: nn.Module) -> bool:
    head = getattr(model, 'decode_head', None)
    if head is not None:
        return 'batch_data_samples' in inspect.signature(head.forward).parameters
    try:
        from mmdet.models.detectors import DetectionTransformer, MaskFormer
    except ImportError:
        return False
    return isinstance(model, (DetectionTransformer, MaskFormer))


def traced_module(model: nn.Module, image_shape: Tuple[int, int]) -> nn.Module:
    if hasattr(model, 'roi_head') and hasattr(model, 'rpn_head'):
        return TwoStageDetector(model, image_shape)
    if hasattr(model, 'extract_feat') and _needs_image_metas(model):
        return SegmenterPredict(model) if hasattr(model, 'decode_head') \
            else WithImageMetas(model)
    if hasattr(model, 'extract_feat'):
        return TensorMode(model)
    return model  # a plain nn.Module (the Table-1 classifier, tests)


# ---- counting ------------------------------------------------------------------------
def analyze(module: nn.Module, image_shape: Tuple[int, int], channels: int = 3):
    """mmengine's FlopAnalyzer over one forward pass (eval mode, no grad) of a zero
    1xCxHxW batch, with ``HANDLES``; ``.total()``, ``.by_module()``... give the
    counts. Raises ``UncountedOperators`` for arithmetic it cannot count."""
    from mmengine.analysis import FlopAnalyzer
    was_training = module.training
    module.eval()
    analyzer = FlopAnalyzer(module, (torch.zeros(1, channels, *image_shape),))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    for name, handle in HANDLES.items():
        analyzer.set_op_handle(name, handle)
    with torch.no_grad(), counted_deformable_attention():
        analyzer.total()  # runs the trace; the counts are cached
    module.train(was_training)
    unsupported = analyzer.unsupported_ops()
    uncounted = {op: n for op, n in unsupported.items() if op not in ZERO_MAC_OPS}
    if uncounted:
        listed = ', '.join(f'{op} (x{n})' for op, n in sorted(uncounted.items()))
        raise UncountedOperators(
            f'no FLOP counter for {listed}; add a handle to '
            f'steps_mm.analysis.flops.HANDLES, or add the op to ZERO_MAC_OPS '
            f'if it does no multiply-accumulate')
    return analyzer


def count_flops(model: nn.Module, size: Tuple[int, int] = (224, 224)) -> int:
    """Multiply-accumulates of one forward pass of a 1x3xHxW image (fvcore's
    convention: one MAC is one FLOP), counted by ``analyze``."""
    return analyze(model, size).total()


def _steps_rows(backbone: nn.Module, prefix: str, by_module) -> List[Dict]:
    """Per StepsStage of the backbone, its MACs and those of each step."""
    rows = []
    for name, stage in backbone.named_modules():
        if not isinstance(stage, StepsStage):
            continue
        steps, start = [], 0
        for width, depth in stage.spec:
            macs = sum(by_module.get(f'{prefix}{name}.{k}', 0)
                       for k in range(start, start + depth))
            steps.append(dict(width=width, depth=depth, flops=macs))
            start += depth
        rows.append(dict(stage=name, flops=by_module.get(prefix + name, 0), steps=steps,
                         params=sum(p.numel() for p in stage.parameters())))
    return rows


def check_input_size(model: nn.Module, image_shape: Tuple[int, int]) -> None:
    """Raise ``InputTooSmall`` where a two-stage DETR (DINO) would select more
    queries than its encoder has tokens at ``image_shape`` (``torch.topk`` fails
    deep in the trace). ``count`` calls it only after a failed trace, so that a
    count that works runs no extra forward pass."""
    queries = getattr(model, 'num_queries', None)
    if not queries or not getattr(model, 'as_two_stage', False):
        return
    was_training = model.training
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, *image_shape))
    model.train(was_training)
    tokens = sum(f.shape[-2] * f.shape[-1] for f in feats)
    if tokens < queries:
        h, w = image_shape
        scale = (queries / tokens) ** 0.5
        need = [32 * -(-int(side * scale) // 32) for side in (h, w)]
        raise InputTooSmall(
            f'{type(model).__name__} selects its {queries} queries among the '
            f"encoder's tokens, and at {h}x{w} its {len(feats)} feature levels hold "
            f'{tokens}; pass a larger input (about --shape {need[0]} {need[1]} or more)')


def count(model: nn.Module, image_shape: Tuple[int, int]) -> Dict:
    """Total MACs and parameters of ``model`` at ``image_shape``, broken down by
    top-level part (backbone / neck / heads) and by stage and step of the
    backbone."""
    module = traced_module(model, image_shape)
    try:
        analyzer = analyze(module, image_shape)
    except RuntimeError:  # name the cause where it is the input's size
        check_input_size(model, image_shape)
        raise
    by_module = analyzer.by_module()
    parts = OrderedDict()
    for name, child in module.named_children():
        if name == 'data_preprocessor':
            continue
        parts[name] = dict(flops=by_module.get(name, 0), params=count_params(child))
    outside = analyzer.total() - sum(p['flops'] for p in parts.values())
    if outside:  # ops of the model's own code, outside its parts' modules
        parts['(outside the parts)'] = dict(flops=outside, params=0)
    backbone = getattr(module, 'backbone', None)
    stages = _steps_rows(backbone, 'backbone.', by_module) if backbone is not None \
        else _steps_rows(module, '', by_module)
    return dict(flops=analyzer.total(), params=count_params(model),
                shape=list(image_shape), parts=parts, stages=stages)


#: backbone options that concern dense prediction or training, not the
#: architecture: dropped for the Table-1 classifier (which sets its own outputs)
DENSE_ONLY_KEYS = frozenset((
    'out_indices', 'gap_before_final_norm', 'final_norm', 'frozen_stages',
    'norm_eval', 'norm_cfg', 'with_cp', 'init_cfg', 'drop_path_rate',
    'interpolate_mode', 'img_size', 'out_type'))


def table1_classifier(backbone_cfg: dict, num_classes: int = 1000) -> nn.Module:
    """The paper's Table-1 model of a config's backbone: the backbone with its
    architecture options only, pooled, normalised, and a linear head."""
    cfg = {k: v for k, v in backbone_cfg.items() if k not in DENSE_ONLY_KEYS}
    if cfg.get('type', '').split('.')[-1] not in MODELS.module_dict:
        raise ValueError(f"the Table-1 mode needs a steps_mm backbone; this config's "
                         f"backbone is {backbone_cfg.get('type')!r}")
    return StepsImageClassifier(cfg, num_classes=num_classes)


def default_shape(cfg, scope: str) -> Tuple[int, int]:
    """The input size a config's model is counted at: its codebase's paper shape
    (``DEFAULT_SHAPES``), but for Mask2Former on ADE20K its training crop
    (``data_preprocessor.size``, 512x512), where the Mask2Former paper counts it."""
    head = cfg.model.get('decode_head') or {}
    if scope == 'mmseg' and str(head.get('type', '')).endswith('Mask2FormerHead'):
        return tuple(cfg.model.data_preprocessor.size)
    return DEFAULT_SHAPES[scope]


def count_config(config: str, shape: Optional[Tuple[int, int]] = None,
                 backbone_only: bool = False) -> Dict:
    """``count`` of a config's model at ``shape`` (default: the codebase's
    paper shape), or of its Table-1 backbone classifier at 224x224."""
    model, cfg, scope = build_from_config(config)
    if backbone_only:
        model = table1_classifier(cfg.model.backbone.to_dict())
        shape = shape or TABLE1_SHAPE
    elif shape is None:
        if scope not in DEFAULT_SHAPES:
            raise ValueError(f'{config}: no default input shape for scope {scope!r}; '
                             f'pass --shape H W')
        shape = default_shape(cfg, scope)
    result = count(model, tuple(shape))
    result.update(config=config, scope=scope, backbone=describe_backbone(cfg))
    return result


def describe_backbone(cfg) -> Dict:
    bb = cfg.model.get('backbone', {})
    return dict(type=str(bb.get('type', '')).split('.')[-1],
                arch=str(bb.get('arch', bb.get('depth', ''))),
                layout=bb.get('layout', 'steps') if 'Steps' in str(bb.get('type', ''))
                else 'n/a')


# ---- presentation -------------------------------------------------------------------
def giga(value: int) -> str:
    return f'{value / 1e9:.2f}'


def breakdown_table(result: Dict) -> str:
    rows = [['total', giga(result['flops']), f"{result['params'] / 1e6:.2f}"]]
    rows += [[name, giga(p['flops']), f"{p['params'] / 1e6:.2f}"]
             for name, p in result['parts'].items()]
    for stage in result['stages']:
        rows.append([f"backbone {stage['stage']}", giga(stage['flops']),
                     f"{stage['params'] / 1e6:.2f}"])
        if len(stage['steps']) > 1:
            rows += [[f"  step {i + 1} ({s['width']}x{s['depth']})", giga(s['flops']), '']
                     for i, s in enumerate(stage['steps'])]
    h, w = result['shape']
    return markdown_table([f'part (1x3x{h}x{w})', 'GMACs', 'params (M)'], rows)
