"""tools/flops.py and the model-zoo metafile: counts against hand-computed MACs
of a tiny model, loud failure on uncounted arithmetic, the det/seg protocol on
shipped configs, and the metafile kept in sync with configs/."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from steps_mm.models import StepsStage
from steps_mm.models.blocks import TransformerBlock
from steps_mm.models.layers import explicit_attention
from steps_mm.analysis import configs, flops, model_index

from conftest import ROOT
N = 16  # tokens of the tiny model: a 16x16 image in 4x4 patches


class TinyBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.stage = StepsStage([(4, 1), (8, 1)],
                                lambda width, k: TransformerBlock(width, width // 4, 2.),
                                channel_dim=-1)

    def forward(self, x):
        return self.stage(self.stem(x).flatten(2).transpose(1, 2))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = TinyBackbone()
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        return self.head(self.backbone(x).mean(1))


def block_macs(c: int, hidden_ratio: int = 2) -> int:
    """A pre-norm Transformer block on N tokens of width c: qkv 3Nc^2, proj Nc^2,
    MLP 2*ratio*Nc^2, attention q@k^T and attn@v 2N^2c, two LayerNorms counted
    5 per element (fvcore's convention for an affine norm)."""
    return (3 + 1 + 2 * hidden_ratio) * N * c * c + 2 * N * N * c + 2 * 5 * N * c


STEM, HEAD = 8 * N * 3 * 4 * 4, 8 * 5


@pytest.mark.parametrize('explicit', [True, False])
def test_tiny_model_matches_hand_count(explicit):
    with explicit_attention(explicit):  # matmuls or the fused sdpa op
        result = flops.count(Tiny(), (16, 16))
    assert result['flops'] == STEM + block_macs(4) + block_macs(8) + HEAD
    assert result['parts']['backbone']['flops'] == STEM + block_macs(4) + block_macs(8)
    assert result['parts']['head']['flops'] == HEAD
    (stage,) = result['stages']
    assert [s['flops'] for s in stage['steps']] == [block_macs(4), block_macs(8)]
    assert result['params'] == sum(p.numel() for p in Tiny().parameters())


def test_uncounted_arithmetic_is_an_error_naming_the_op():
    class Distances(nn.Module):
        def forward(self, x):
            flat = x.flatten(1)
            return torch.cdist(flat, flat)  # arithmetic with no counter

    with pytest.raises(flops.UncountedOperators, match='aten::cdist'):
        flops.count(Distances(), (8, 8))
    with pytest.raises(flops.UncountedOperators, match='aten::cdist'):
        flops.count_flops(Distances(), (8, 8))  # the one counter, strict everywhere


def test_position_embedding_resize_is_counted():
    """A ViT at another input size resizes its position embedding bicubically:
    16 MACs per output value, which mmengine alone would not count."""
    from steps_mm.models import StepsImageClassifier
    model = StepsImageClassifier(dict(
        type='StepsViT', img_size=32, patch_size=8, layout='sequential',
        arch=dict(channels=[16], depths=[1], heads={16: 2})), num_classes=10)
    native = flops.count_flops(model, (32, 32))
    resized = flops.analyze(model, (48, 48))
    assert resized.by_operator()['upsample_bicubic2d'] == 16 * 16 * 6 * 6
    assert resized.total() > native


def shipped(name):
    return osp.join(ROOT, 'configs', name)


@pytest.mark.slow
def test_mask_rcnn_protocol_breakdown():
    pytest.importorskip('mmdet')
    result = flops.count_config(shipped('mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py'),
                                (128, 128))
    parts = result['parts']
    assert {'backbone', 'neck', 'rpn_head', 'roi_head'} <= set(parts)
    assert sum(p['flops'] for p in parts.values()) == result['flops']
    # 1000 proposals through the box head's two FCs dominate at this size
    assert parts['roi_head']['flops'] > flops.NUM_PROPOSALS * 256 * 7 * 7 * 1024
    steps = [s for s in result['stages'] if len(s['steps']) > 1]
    assert len(steps) == 2  # stages 3 and 4 of Steps-Swin
    for stage in steps:
        assert 0 < sum(s['flops'] for s in stage['steps']) <= stage['flops']


def test_upernet_leaves_out_the_auxiliary_head():
    pytest.importorskip('mmseg')
    result = flops.count_config(shipped('steps_convnext_upernet.py'), (64, 64))
    assert result['parts']['auxiliary_head']['flops'] == 0
    assert result['parts']['decode_head']['flops'] > 0
    assert result['parts']['auxiliary_head']['params'] > 0


def test_table1_mode_reproduces_the_paper_count():
    """Steps-Swin-T: 4.5G MACs at 224x224 in the paper's Table 1."""
    pytest.importorskip('mmdet')
    result = flops.count_config(shipped('mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py'),
                                backbone_only=True)
    assert result['shape'] == [224, 224]
    assert abs(result['flops'] / 1e9 - 4.5) < 0.1
    assert set(result['parts']) == {'backbone', 'head'}


def test_metafile_lists_every_shipped_config():
    """Fails when a config is added or removed without
    `python tools/flops.py --write-metafile`."""
    usable, skipped = configs.shipped_configs(ROOT)
    entries = model_index.read_entries()
    assert entries, 'no metafile: run python tools/flops.py --write-metafile'
    names = {model_index.entry_name(c, ROOT) for c in usable}
    on_disk = names | {model_index.entry_name(c, ROOT) for c in skipped}
    missing, stale = names - set(entries), set(entries) - on_disk
    assert not missing and not stale, (
        f'metafile out of sync (missing {sorted(missing)}, stale {sorted(stale)}): '
        f'run python tools/flops.py --write-metafile')
    for config in usable:
        entry = entries[model_index.entry_name(config, ROOT)]
        assert entry['Config'] == osp.relpath(config, ROOT)
        meta = entry['Metadata']
        assert meta['FLOPs'] >= meta['Backbone FLOPs'] > 0
        if meta['Input Shape'] == '1x3x224x224':  # an ImageNet classifier: the
            # mmpretrain model and the Table-1 model count the same, but for
            # mmpretrain's pooling op (counted; a mean counts zero)
            assert meta['FLOPs'] == pytest.approx(meta['Backbone FLOPs'], rel=1e-4)


def test_metafile_parameters_match_a_cheap_config():
    from steps_mm.analysis import count_params
    usable, _ = configs.shipped_configs(ROOT)
    config = next(c for c in usable if 'upernet' in c and 'r50' in c)
    entry = model_index.read_entries()[model_index.entry_name(config, ROOT)]
    assert entry['Metadata']['Parameters'] == count_params(
        configs.build_from_config(config)[0])


@pytest.mark.slow  # mim as a subprocess
def test_mim_reads_the_model_index():
    pytest.importorskip('mim')
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    frame = convert2df(load(model_index.MODEL_INDEX))
    assert set(frame.index) == set(model_index.read_entries())
    assert (frame['model'] == 'stepsnet').all()
    assert {'flops', 'parameters', 'input_shape', 'paper'} <= set(frame.columns)
    # the command itself (from the repository root with the editable install)
    out = subprocess.run([sys.executable, '-m', 'mim', 'search', 'steps_mm',
                          '--field', 'flops'], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert 'config id: mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco' in out


@pytest.mark.parametrize('scope', ['mmengine', 'mmdet', 'mmseg'])
def test_classifier_builds_under_another_default_scope(scope):
    """Counting FLOPs after a codebase's config set its default scope (as the
    Runner and ``analysis.configs.build_model`` do) still finds our backbones."""
    from mmengine.registry import DefaultScope
    from steps_mm.models.classifier import StepsImageClassifier
    with DefaultScope.overwrite_default_scope(scope):
        model = StepsImageClassifier(dict(type='StepsResNet', depth=18), num_classes=10)
    assert flops.count_flops(model, (32, 32)) > 0


def _deformable_inputs(gen=None):
    """mmcv's layout: value (batch, keys, heads, dims), level shapes, sampling
    locations (batch, queries, heads, levels, points, 2), weights (..., points)."""
    shapes = torch.tensor([[4, 4], [2, 2]])
    value = torch.randn(2, 20, 2, 8, generator=gen)
    locations = torch.rand(2, 6, 2, 2, 3, 2, generator=gen)
    weights = torch.rand(2, 6, 2, 2, 3, generator=gen).softmax(-1)
    return value, shapes, locations, weights


def test_counted_deformable_attention_gives_mmcvs_values():
    msda = pytest.importorskip('mmcv.ops.multi_scale_deform_attn')
    inputs = _deformable_inputs(torch.Generator().manual_seed(0))
    torch.testing.assert_close(flops._deformable_attention(*inputs),
                               msda.multi_scale_deformable_attn_pytorch(*inputs))


def test_deformable_attention_counts_each_sample_and_its_weight():
    """4 MACs per bilinear sample and 1 per sample in the weighted sum, through
    mmcv's own entry point (which the count replaces while it runs, and restores)."""
    msda = pytest.importorskip('mmcv.ops.multi_scale_deform_attn')
    original = msda.multi_scale_deformable_attn_pytorch

    class Sampler(nn.Module):
        def __init__(self):
            super().__init__()
            self.inputs = _deformable_inputs()

        def forward(self, x):
            value, shapes, locations, weights = self.inputs
            return msda.multi_scale_deformable_attn_pytorch(
                value + x.mean(), shapes, locations, weights)

    samples = 2 * 6 * 2 * 2 * 3 * 8  # batch x queries x heads x levels x points x dims
    assert flops.count_flops(Sampler(), (4, 4)) == 5 * samples
    assert msda.multi_scale_deformable_attn_pytorch is original


def test_mask2former_on_ade20k_counts_at_its_crop():
    pytest.importorskip('mmseg')
    from mmengine.config import Config
    cfg = Config.fromfile(shipped('mask2former_steps-r50_8xb2-160k_ade20k-512x512.py'),
                          import_custom_modules=False)
    assert flops.default_shape(cfg, 'mmseg') == (512, 512)
    cfg = Config.fromfile(shipped('steps_convnext_upernet.py'), import_custom_modules=False)
    assert flops.default_shape(cfg, 'mmseg') == (512, 2048)


@pytest.mark.slow
def test_cascade_protocol_breakdown():
    """The 1000 proposals through each of the three box heads (four 3x3 convs on
    7x7 RoIs each), 100 boxes through each of the three mask heads."""
    pytest.importorskip('mmdet')
    result = flops.count_config(shipped(
        'cascade-mask-rcnn_steps-convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'),
        (128, 128))
    parts = result['parts']
    assert sum(p['flops'] for p in parts.values()) == result['flops']
    box_convs = 3 * flops.NUM_PROPOSALS * 4 * 256 * 256 * 9 * 7 * 7
    mask_convs = 3 * flops.NUM_MASKS * 4 * 256 * 256 * 9 * 14 * 14
    assert box_convs + mask_convs < parts['roi_head']['flops'] < 1.2 * (box_convs + mask_convs)


@pytest.mark.slow
@pytest.mark.parametrize('config, parts', [
    ('dino-4scale_steps-swin-t-p4-w7_8xb2-12e_coco.py', {'encoder', 'decoder', 'bbox_head'}),
    ('mask2former_steps-swin-t-p4-w7-224_8xb2-lsj-50e_coco.py', {'panoptic_head'}),
    ('mask2former_steps-r50_8xb2-160k_ade20k-512x512.py', {'decode_head'})])
def test_transformer_heads_count_every_part(config, parts):
    """DINO and Mask2Former (deformable attention, their transformer decoders):
    every arithmetic op counted, each in its part."""
    result = flops.count_config(shipped(config), (256, 256))
    assert '(outside the parts)' not in result['parts']
    assert sum(p['flops'] for p in result['parts'].values()) == result['flops']
    for name in parts | {'backbone'}:
        assert result['parts'][name]['flops'] > 0, name


@pytest.mark.slow
def test_dino_below_its_query_count_is_refused_with_the_size_it_needs():
    """At 64x64 DINO's 4 levels hold 85 tokens for 900 queries: a clear error
    naming a size, not torch.topk's 'selected index k out of range'; the size
    it names is counted."""
    config = shipped('dino-4scale_r50_8xb2-12e_coco.py')
    with pytest.raises(flops.InputTooSmall, match=r'900 queries.*64x64.*85') as error:
        flops.count_config(config, (64, 64))
    h, w = map(int, re.search(r'--shape (\d+) (\d+)', str(error.value)).groups())
    assert flops.count_config(config, (h, w))['flops'] > 0
