"""steps_mm.models.pretrained: every accepted checkpoint key scheme reproduces the
source model exactly; bad checkpoints fail with the promised errors; resizing; the report;
tools/convert_checkpoint.py.

The official/timm/torchvision key schemes are written from our sequential models with
key lists built by hand below (from the names of those code bases), independently of the
loader's rules."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from steps_mm.models import StepsImageClassifier
from steps_mm.models.backbones.swin import PatchMerging, merge_order
from steps_mm.models.pretrained import PretrainedError, load_pretrained
from steps_mm.models.pretrained import loader as P
from steps_mm.models.utils import resize_relative_position_bias_table
from backbone_checks import assert_outputs_close
from conftest import ROOT
from reference_checkpoints import (CONVNEXT, INPUTS, SWIN, convnext, convnext_official,
                                   convnext_timm, mm, randomized, resnet,
                                   resnet_torchvision, swin, swin_pairs, swin_transform,
                                   to_official_merge, vit, vit_mmseg, vit_timm, written)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# (id, builder, load kwargs, source model, checkpoint) for every accepted key scheme;
# the source is sequential unless noted
def key_schemes():
    cn = lambda: randomized(convnext(layout='sequential'))  # noqa: E731
    sw = lambda: randomized(swin(layout='sequential'))  # noqa: E731
    rn = lambda: randomized(resnet(layout='sequential'))  # noqa: E731
    vt = lambda: randomized(vit(layout='sequential'))  # noqa: E731
    return [
        ('convnext-mmdet', convnext, {}, cn,  # a detector: neck.* is ignored
         lambda m: mm(m.state_dict() | {'neck.w': torch.ones(1)})),
        ('convnext-official', convnext, {}, cn,
         lambda m: {'model': written(m, convnext_official(CONVNEXT['depths']))}),
        ('convnext-timm', convnext, {}, cn,
         lambda m: written(m, convnext_timm(CONVNEXT['depths']))),
        ('convnext-ddp', convnext, {}, cn,
         lambda m: {'state_dict': {'module.' + k: v for k, v in
                                   written(m, convnext_timm([1, 1, 2, 1])).items()}}),
        ('convnext-user-prefix', convnext, dict(prefix='encoder.'), cn,
         lambda m: mm(m.state_dict(), 'encoder.') | {'decoder.w': torch.ones(1)}),
        ('swin-mm', swin, {}, sw, lambda m: {k.replace('norm3', 'norm'): v
                                             for k, v in m.state_dict().items()}),
        ('swin-official', swin, {}, sw, lambda m: {'model': written(
            m, swin_pairs(SWIN['depths'], timm=False), swin_transform) | {
            'layers.1.blocks.1.attn_mask': torch.zeros(4, 9, 9),
            'layers.1.blocks.1.attn.relative_position_index': torch.zeros(9, 9)}}),
        ('swin-timm', swin, {}, sw,
         lambda m: written(m, swin_pairs(SWIN['depths'], timm=True), swin_transform)),
        ('resnet-steps_mm', resnet, {}, lambda: randomized(resnet()),
         lambda m: mm(m.state_dict())),
        ('resnet-torchvision', resnet, {}, rn,
         lambda m: written(m, resnet_torchvision(m))),
        ('resnet-mmdet', resnet, {}, rn,
         lambda m: mm(written(m, resnet_torchvision(m)))),
        ('deit-mmpretrain', vit, {}, vt,
         lambda m: mm(m.state_dict() | {'head.layers.head.weight': torch.ones(2)})),
        ('deit-mmseg', vit, {}, vt,
         lambda m: written(m, vit_mmseg(3))),
        ('deit-timm', vit, {}, vt,
         lambda m: {'model': written(m, vit_timm(3))}),
        ('convnext-steps-classifier', convnext, {},
         lambda: randomized(StepsImageClassifier(
             dict(type='StepsConvNeXt', arch=CONVNEXT), num_classes=5)), None),
    ]


def outputs(model, shape):
    torch.manual_seed(1)
    model.eval()  # mmdet's ResNet.train() returns None
    with torch.no_grad():
        return model(torch.randn(*shape))


@pytest.mark.parametrize('name, build, kwargs, source, checkpoint',
                         key_schemes(), ids=[c[0] for c in key_schemes()])
def test_every_key_scheme_reproduces_the_source(tmp_path, name, build, kwargs, source,
                                                checkpoint):
    src = source()
    if isinstance(src, StepsImageClassifier):  # steps layout, backbone.* and head.*
        ckpt, src = src.state_dict(), src.backbone
        target = build(layout='steps', gap_before_final_norm=True)
    else:
        ckpt = checkpoint(src)
        target = build(layout=src.layout)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(ckpt, path)
    report = load_pretrained(target, path, **kwargs)
    assert report.matched == report.total and not report.unexpected
    assert_outputs_close(outputs(src, INPUTS[build]), outputs(target, INPUTS[build]),
                         rtol=0, atol=0)


def test_official_patch_merging_order():
    """Official PatchMerging: cat(x0, x1, x2, x3) of the (row, col) offsets (0,0),
    (1,0), (0,1), (1,1), LN, Linear; converted weights give the same output."""
    torch.manual_seed(0)
    C, x = 6, torch.randn(2, 4, 6, 6)
    norm, reduction = torch.nn.LayerNorm(4 * C), torch.nn.Linear(4 * C, 5, bias=False)
    for p in (*norm.parameters(), reduction.weight):
        torch.nn.init.normal_(p)
    cat = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
                     x[:, 1::2, 1::2]], -1)
    ours = PatchMerging(C, 5)
    ours.load_state_dict({'norm.weight': merge_order(norm.weight.data),
                          'norm.bias': merge_order(norm.bias.data),
                          'reduction.weight': merge_order(reduction.weight.data)})
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reduction(norm(cat)))
    torch.testing.assert_close(to_official_merge(merge_order(reduction.weight.data)),
                               reduction.weight.data, rtol=0, atol=0)


# ---- the init_cfg path, the report -------------------------------------------------
def test_init_cfg_pretrained_loads_and_logs_one_report(tmp_path, monkeypatch):
    src = randomized(swin(layout='sequential'))
    path = str(tmp_path / 'swin.pth')
    torch.save({'model': written(src, swin_pairs(SWIN['depths'], timm=False),
                                 swin_transform)}, path)
    lines = []
    monkeypatch.setattr(P, 'print_log', lambda msg, **kw: lines.append((msg, kw)))
    model = swin(layout='sequential', out_indices=(0, 1, 2, 3),
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    assert len(lines) == 1 and lines[0][1] == dict(logger='current')
    line = lines[0][0]
    total = len(list(model.parameters()))
    # the classification checkpoint has the last output norm only
    assert f'matched {total - 6}/{total} parameters' in line
    assert 'missing 6 [norm0.weight, norm0.bias, norm1.weight +3 more]' in line
    assert 'unexpected 0 []' in line and 'dropped 2 [head.weight, head.bias]' in line
    assert 'Swin official names' in line and 'resized 0 []' in line
    torch.testing.assert_close(outputs(model, INPUTS[swin])[-1],
                               outputs(src, INPUTS[swin])[-1], rtol=0, atol=0)


def test_other_init_cfg_is_mmengine():
    model = convnext(layout='sequential')
    model.init_weights()  # TruncNormal / Constant
    assert model.is_init and model.stages[0][0].norm.weight.eq(1).all()


# ---- failing loudly ----------------------------------------------------------------
@pytest.fixture
def timm_convnext(tmp_path):
    src = randomized(convnext(layout='sequential'))
    state = written(src, convnext_timm(CONVNEXT['depths']))
    path = str(tmp_path / 'convnext.pth')
    torch.save(state, path)
    return state, path


def save(tmp_path, ckpt):
    path = str(tmp_path / 'bad.pth')
    torch.save(ckpt, path)
    return path


def test_truncated_file(timm_convnext, tmp_path):
    _, path = timm_convnext
    data = open(path, 'rb').read()
    bad = str(tmp_path / 'truncated.pth')
    open(bad, 'wb').write(data[:len(data) // 2])
    with pytest.raises(PretrainedError, match='truncated or not a torch checkpoint'):
        load_pretrained(convnext(layout='sequential'), bad)


def test_wrong_family(tmp_path):
    src = randomized(swin(layout='sequential'))
    path = save(tmp_path, written(src, swin_pairs(SWIN['depths'], timm=True),
                                  swin_transform))
    with pytest.raises(PretrainedError, match='this looks like a Swin checkpoint '
                       r'\(.*timm names.*this backbone is StepsConvNeXt: use '
                       'StepsSwinTransformer'):
        load_pretrained(convnext(layout='sequential'), path)


def test_steps_layout_refuses_a_baseline_checkpoint(timm_convnext):
    with pytest.raises(PretrainedError, match="layout='steps' cannot load a baseline "
                                              "checkpoint: use layout='sequential'"):
        load_pretrained(convnext(layout='steps'), timm_convnext[1])


def test_steps_layout_and_a_sequential_mm_checkpoint(tmp_path):
    path = save(tmp_path, mm(convnext(layout='sequential').state_dict()))
    with pytest.raises(PretrainedError, match="shape mismatches.*a baseline checkpoint "
                                              "needs layout='sequential'"):
        load_pretrained(convnext(layout='steps'), path)


def test_half_the_keys(timm_convnext, tmp_path):
    state, _ = timm_convnext
    half = dict(list(state.items())[::2])
    with pytest.raises(PretrainedError, match=r'cannot load .*: missing \d+ keys '
                                              r'\[downsample_layers'):
        load_pretrained(convnext(layout='sequential'), save(tmp_path, half))


def test_shape_mismatch(timm_convnext, tmp_path):
    state, _ = timm_convnext
    state = dict(state, **{'stages.2.blocks.1.mlp.fc1.weight': torch.zeros(5, 24)})
    with pytest.raises(PretrainedError, match=r'1 shape mismatches \[stages.2.1.'
                       r'pointwise_conv1.weight: checkpoint 5x24 vs backbone 96x24\]'):
        load_pretrained(convnext(layout='sequential'), save(tmp_path, state))


def test_unknown_and_other_arch_keys(timm_convnext, tmp_path):
    state, _ = timm_convnext
    extra = dict(state, **{'stages.2.blocks.2.gamma': torch.ones(24),
                           'dist_token': torch.ones(1)})
    with pytest.raises(PretrainedError, match=r'unexpected 2 keys \[stages.2.blocks.2.'
                       r'gamma -> stages.2.2.gamma, dist_token\]'):
        load_pretrained(convnext(layout='sequential'), save(tmp_path, extra))


def test_too_few_values_matched(timm_convnext, monkeypatch):
    monkeypatch.setattr(P, 'MIN_MATCHED', 1.0)
    with pytest.raises(PretrainedError, match=r'only 9\d\.\d% of the parameter values'):
        load_pretrained(convnext(layout='sequential', out_indices=(0, 1, 2, 3)),
                        timm_convnext[1])


def test_prefix_not_found(timm_convnext):
    with pytest.raises(PretrainedError, match="no key of the checkpoint starts with "
                                              "prefix 'backbone.'"):
        load_pretrained(convnext(layout='sequential'), timm_convnext[1], 'backbone.')


# ---- resizing ----------------------------------------------------------------------
def test_swin_window_resize_is_reported(tmp_path):
    src = randomized(swin(layout='sequential', window_size=3))
    path = save(tmp_path, mm(src.state_dict()))
    model = swin(layout='sequential', window_size=5)
    report = load_pretrained(model, path)
    assert len(report.resized) == sum(SWIN['depths'])
    assert report.resized[0] == \
        'stages.0.blocks.0.attn.w_msa.relative_position_bias_table 25x1->81x1'
    assert 'resized 6 [stages.0.blocks.0' in report.line()
    out = outputs(model, INPUTS[swin])[-1]
    assert out.shape == (1, 32, 2, 2) and torch.isfinite(out).all()
    # a table constant over offsets stays constant
    table = resize_relative_position_bias_table(torch.full((25, 2), 0.3), (81, 2))
    torch.testing.assert_close(table, torch.full((81, 2), 0.3))


def test_deit_pos_embed_resize_is_reported(tmp_path):
    src = randomized(vit(layout='sequential', img_size=32))
    path = save(tmp_path, {'model': written(src, vit_timm(3))})
    model = vit(layout='sequential', img_size=64)
    report = load_pretrained(model, path)
    assert report.resized == ['pos_embed 1x5x16->1x17x16']
    torch.testing.assert_close(model.pos_embed[:, 0], src.pos_embed[:, 0])
    outs = outputs(model, (1, 3, 64, 64))
    assert outs[-1].shape == (1, 16, 4, 4) and torch.isfinite(outs[-1]).all()


# ---- the converter -----------------------------------------------------------------
@pytest.mark.slow  # the tool as a subprocess
def test_convert_checkpoint_tool(timm_convnext, tmp_path):
    _, path = timm_convnext
    dst = str(tmp_path / 'converted.pth')
    arch = '{"channels": [8, 16, 24, 32], "depths": [1, 1, 2, 1]}'
    result = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'convert_checkpoint.py'), path, dst,
         '--family', 'convnext', '--arch', arch],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    n = len(list(convnext(layout='sequential').parameters()))  # 63, norm3 included
    assert f'ConvNeXt timm names): matched {n}/{n} parameters' in result.stdout
    assert f'converted.pth: {n} backbone tensors' in result.stdout
    model = convnext(layout='sequential',
                     init_cfg=dict(type='Pretrained', checkpoint=dst))
    model.init_weights()
    src = convnext(layout='sequential')
    load_pretrained(src, path)
    torch.testing.assert_close(outputs(model, INPUTS[convnext]),
                               outputs(src, INPUTS[convnext]), rtol=0, atol=0)
    assert torch.load(dst)['meta']['steps_mm']['layout'] == 'sequential'


# ---- against the references that are installed -------------------------------------
def test_official_swin_agrees_with_mmdet_swin_converter():
    from mmdet.models.backbones.swin import swin_converter
    src = randomized(swin(layout='sequential'))
    official = written(src, swin_pairs(SWIN['depths'], timm=False), swin_transform)
    theirs = {k[len('backbone.'):]: v for k, v in swin_converter(official).items()}
    report = P.match_state_dict(swin(layout='sequential'), official)
    theirs['norm3.weight'], theirs['norm3.bias'] = theirs.pop('norm.weight'), \
        theirs.pop('norm.bias')  # mmdet leaves the classifier's norm unloaded
    assert set(report.loaded) == set(theirs)
    for name, value in theirs.items():
        torch.testing.assert_close(report.loaded[name], value, rtol=0, atol=0)


def test_mmdet_resnet_in_torchvision_names_gives_mmdet_outputs(tmp_path):
    from mmdet.models.backbones import ResNet
    ref = ResNet(18)
    randomized(ref)
    model = resnet(layout='sequential')
    load_pretrained(model, save(tmp_path, {'state_dict': ref.state_dict()}))
    assert_outputs_close(outputs(ref, INPUTS[resnet]), outputs(model, INPUTS[resnet]),
                         rtol=0, atol=0)
