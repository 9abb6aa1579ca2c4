"""steps_mm.models.pretrained.selection: a Steps backbone initialised by selecting
from its twin's checkpoint. Selected values equal the slices of their sources, the
same from every checkpoint key scheme; attention keeps whole heads; every tensor is
accounted for; wrong checkpoints are refused; the init_cfg (backbone, classifier,
mmengine) and converter paths; every shipped Steps config's backbone.

The expected sources and slices are written by hand from the specs below (block j of
a step of D_i blocks takes twin block (2j + 1) * D // (2 D_i); the first elements of each
dimension; heads apart), not read from the code under test."""
import importlib.util
import json
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.model import initialize

from fast_lane import sampled
from steps_mm.models import (StepsConvNeXt, StepsImageClassifier, StepsResNet,
                             StepsSwinTransformer, StepsViT)
from steps_mm.models.blocks import Bottleneck
from steps_mm.models.pretrained import PretrainedError
from steps_mm.models.pretrained.selection import (select_from_twin,
                                                  select_state_dict)
from steps_mm.registry import MODELS
from reference_checkpoints import (convnext_official, convnext_timm, mm, randomized,
                                   resnet_torchvision, swin_pairs, swin_transform,
                                   vit_mmseg, vit_timm, written)

from conftest import ROOT

# Stage 3 (index 2): the twin has 4 blocks of width 32; stage 4: 2 of width 48.
HIER = dict(channels=[8, 16, 32, 48], depths=[1, 1, 4, 2],
            steps=[[(8, 1)], [(16, 1)], [(16, 2), (24, 1), (32, 3)],
                   [(20, 3), (40, 1), (48, 0)]])
# head dims: twin 32/4 = 48/6 = 8; steps 16/2 = 24/3 = 8 (equal), 20/4 = 5
# (narrower), 40/4 = 10 (wider: 2 dims per head at own init)
HEADS = {8: 1, 16: 2, 20: 4, 24: 3, 32: 4, 40: 4, 48: 6}
# one stage: the twin has 4 blocks of width 32 (head dim 8); steps 16/2 (8),
# 24/2 (12: wider), 32/4
VIT = dict(channels=[32], depths=[4], heads={16: 2, 24: 2, 32: 4},
           steps=[[(16, 3), (24, 2), (32, 2)]])


class TinyResNet(StepsResNet):
    """A bottleneck ResNet at toy widths (I/O widths 4x the bottleneck's)."""
    arch_settings = {'tiny': dict(
        block=Bottleneck, channels=[16, 32, 64, 128], depths=[1, 1, 3, 1],
        steps=[[(16, 1)], [(32, 1)], [(32, 2), (48, 1), (64, 2)],
               [(64, 1), (96, 1), (128, 0)]])}
    stem_channels = 8


# Steps block -> (the twin block it selects from, the Steps block's width), by hand
# from the specs; the other blocks (stages 1-2) copy their namesakes whole
HIER_BLOCKS = {'2.0': ('2.1', 16), '2.1': ('2.3', 16), '2.2': ('2.2', 24),
               '2.3': ('2.0', 32), '2.4': ('2.2', 32), '2.5': ('2.3', 32),
               '3.0': ('3.0', 20), '3.1': ('3.1', 20), '3.2': ('3.1', 20),
               '3.3': ('3.1', 40)}
BLOCKS = {
    'convnext': {f'stages.{s}': (f'stages.{t}', w) for s, (t, w) in HIER_BLOCKS.items()},
    'swin': {'stages.{}.blocks.{}'.format(*s.split('.')):
             ('stages.{}.blocks.{}'.format(*t.split('.')), w)
             for s, (t, w) in HIER_BLOCKS.items()},
    'deit': {f'layers.{k}': (f'layers.{t}', w) for k, (t, w) in
            enumerate(zip([0, 2, 3, 1, 3, 1, 3], [16, 16, 16, 24, 24, 32, 32]))},
    'resnet': {f'stages.{s}': (f'stages.{t}', w) for s, t, w in (
        ('2.0', '2.0', 32), ('2.1', '2.2', 32), ('2.2', '2.1', 48), ('2.3', '2.0', 64),
        ('2.4', '2.2', 64), ('3.0', '3.0', 64), ('3.1', '3.0', 96))},
}


def stage_width(family, name):
    """The twin's width at the tensor ``name``."""
    if family == 'deit':
        return VIT['channels'][0]
    arch = TinyResNet.arch_settings['tiny'] if family == 'resnet' else HIER
    return arch['channels'][int(name.split('.')[1])]


def build(family, layout, **kw):
    if family in ('convnext', 'swin'):
        kw.setdefault('out_indices', (0, 1, 2, 3))
    if family == 'convnext':
        return StepsConvNeXt(HIER, layout, **kw)
    if family == 'swin':
        return StepsSwinTransformer(dict(HIER, heads=HEADS), layout, window_size=2,
                                    **kw)
    if family == 'deit':  # out_indices count the Steps model's 7 blocks
        out = (2, 6) if layout == 'steps' else -1
        return StepsViT(VIT, layout, img_size=32, patch_size=8, out_indices=out, **kw)
    return TinyResNet('tiny', layout, **kw)


def twin_of(family):
    """The twin as a classifier's checkpoint holds it: the last output norm."""
    torch.manual_seed(0)
    kw = dict(out_indices=(3,)) if family in ('convnext', 'swin') else {}
    twin = build(family, 'sequential', **kw)
    return randomized(twin)


def checkpoint(family, key_scheme, twin):
    """``twin`` written in ``key_scheme``."""
    depths = VIT['depths'] if family == 'deit' else HIER['depths']
    writers = {
        ('convnext', 'official'): lambda: {'model': written(
            twin, convnext_official(depths))},
        ('convnext', 'timm'): lambda: written(twin, convnext_timm(depths)),
        ('swin', 'official'): lambda: {'model': written(
            twin, swin_pairs(depths, timm=False), swin_transform)},
        ('swin', 'timm'): lambda: written(twin, swin_pairs(depths, timm=True),
                                          swin_transform),
        ('deit', 'official'): lambda: {'model': written(twin, vit_timm(depths[0]))},
        ('deit', 'mmseg'): lambda: written(twin, vit_mmseg(depths[0])),
        ('resnet', 'torchvision'): lambda: written(twin, resnet_torchvision(twin)),
    }
    if key_scheme == 'mmpretrain':
        return mm(twin.state_dict() | {'head.fc.weight': torch.ones(2)})
    return writers[family, key_scheme]()


KEY_SCHEMES = [('convnext', 'official'), ('convnext', 'timm'), ('convnext', 'mmpretrain'),
               ('swin', 'official'), ('swin', 'timm'), ('swin', 'mmpretrain'),
               ('deit', 'official'), ('deit', 'mmseg'), ('deit', 'mmpretrain'),
               ('resnet', 'torchvision'), ('resnet', 'mmpretrain')]


def save(tmp_path, ckpt, name='twin.pth'):
    path = str(tmp_path / name)
    torch.save(ckpt, path)
    return path


# ---- the expected selection, by hand --------------------------------------------------
def heads_of(family, name, width):
    """Attention heads of a qkv/proj tensor at ``width``, or None."""
    if family == 'swin' and '.attn.w_msa.' in name and 'relative' not in name:
        return HEADS[width]
    if family == 'deit' and '.attn.' in name:
        return VIT['heads'][width]
    return None


def expected(family, name, own, twin_value, own_width, twin_width):
    """The Steps tensor ``name`` (its current value ``own``) from its twin tensor:
    the first elements of each dim; qkv as (3, heads, dim, C) and proj's input as
    (heads, dim), the head dims beyond the twin's left as they are."""
    h, H = heads_of(family, name, own_width), heads_of(family, name, twin_width)
    if not h or not ('qkv' in name or name.endswith('proj.weight')):
        return twin_value[tuple(slice(0, n) for n in own.shape)]
    out = own.clone()
    d, D = own_width // h, twin_width // H
    e = min(d, D)
    if 'qkv' in name:
        src = twin_value.reshape(3, H, D, *twin_value.shape[1:])
        out.view(3, h, d, *own.shape[1:])[:, :, :e] = \
            src[:, :h, :e, :own_width] if own.dim() == 2 else src[:, :h, :e]
    else:
        src = twin_value.reshape(twin_width, H, D)
        out.view(own_width, h, d)[:, :, :e] = src[:own_width, :h, :e]
    return out


def check_selected(family, model, before, twin_state):
    """Every tensor of ``model`` is its hand-written selection from
    ``twin_state`` (elements left at own init keep ``before``); the output norms a
    classifier's checkpoint lacks keep ``before``. -> the own-init names."""
    own_init = []
    for name, value in model.state_dict().items():
        if 'relative_position_index' in name:
            continue
        source, want = name, None
        for block, (twin_block, width) in BLOCKS[family].items():
            if name.startswith(block + '.'):
                source = twin_block + name[len(block):]
                want = expected(family, name, before[name], twin_state[source], width,
                                stage_width(family, source))
        if source not in twin_state:
            own_init.append(name)
            want = before[name]
        elif want is None:  # outside the steps: the whole tensor
            want = twin_state[source]
        torch.testing.assert_close(value, want, rtol=0, atol=0, msg=name)
    return own_init


def selected(family, path):
    torch.manual_seed(1)
    model = build(family, 'steps')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = select_from_twin(model, path)
    return model, before, report


# ---- values ---------------------------------------------------------------------------
@pytest.mark.parametrize('family, key_scheme', KEY_SCHEMES,
                         ids=[f'{f}-{k}' for f, k in KEY_SCHEMES])
def test_every_key_scheme_selects_the_slices_of_its_source(tmp_path, family,
                                                           key_scheme):
    twin = twin_of(family)
    model, before, report = selected(family, save(tmp_path, checkpoint(
        family, key_scheme, twin)))
    own_init = check_selected(family, model, before, twin.state_dict())
    hierarchical = family in ('convnext', 'swin')
    assert own_init == ([f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')]
                        if hierarchical else [])
    # every tensor accounted for: selected, or named as own init
    names = {k for k in model.state_dict() if 'relative_position_index' not in k}
    assert set(report.sources) | set(report.own_init) == names
    assert report.own_init == own_init and not report.unused


def test_stems_and_stages_outside_the_steps_copy_whole(tmp_path):
    twin = twin_of('swin')
    model, _, report = selected('swin', save(tmp_path, checkpoint('swin', 'official',
                                                                  twin)))
    theirs = twin.state_dict()
    for name in ('patch_embed.projection.weight', 'patch_embed.norm.bias',
                 'stages.0.blocks.0.attn.w_msa.qkv.weight',
                 'stages.1.blocks.0.ffn.layers.0.0.weight',
                 'stages.2.downsample.reduction.weight', 'norm3.weight'):
        torch.testing.assert_close(model.state_dict()[name], theirs[name], rtol=0,
                                   atol=0)
        assert name in report.copied and str(report.sources[name]) == name
    assert 'stages.2.blocks.0.norm1.weight' not in report.copied


def test_attention_keeps_whole_heads():
    """A Steps block whose heads have the twin's head dim computes the twin's
    first heads: on an input zero beyond its width, the twin's attention with the
    other heads' projection columns zeroed gives the Steps attention's output."""
    torch.manual_seed(0)
    twin = randomized(build('swin', 'sequential'))
    model = build('swin', 'steps')
    model.load_state_dict(select_state_dict(model, twin.state_dict()).state,
                          strict=False)
    ours = model.stages[2].blocks[0].attn.w_msa  # 16 wide, 2 heads of 8
    theirs = twin.stages[2].blocks[1].attn.w_msa  # its source: 32 wide, 4 heads of 8
    x = torch.randn(3, 4, 16)  # (windows, tokens, channels)
    with torch.no_grad():
        theirs.proj.weight[:, 16:] = 0  # heads 2, 3
        want = theirs(torch.cat([x, torch.zeros(3, 4, 16)], -1))[..., :16]
        torch.testing.assert_close(ours(x), want)

    torch.manual_seed(0)
    twin = randomized(build('deit', 'sequential'))
    model = build('deit', 'steps')
    model.load_state_dict(select_state_dict(model, twin.state_dict()).state,
                          strict=False)
    ours, theirs = model.layers[0].attn, twin.layers[0].attn  # 16/2 heads, 32/4
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        theirs.proj.weight[:, 16:] = 0
        want = theirs(torch.cat([x, torch.zeros(2, 5, 16)], -1))[..., :16]
        torch.testing.assert_close(ours(x), want)


def test_wider_heads_keep_their_extra_dims_at_own_init(tmp_path):
    twin = twin_of('swin')
    model, before, report = selected('swin', save(tmp_path, mm(twin.state_dict())))
    name = 'stages.3.blocks.3.attn.w_msa.qkv.weight'  # 40 wide, 4 heads of 10
    got = model.state_dict()[name].view(3, 4, 10, 40)
    src = twin.state_dict()['stages.3.blocks.1.attn.w_msa.qkv.weight'].view(3, 6, 8, 48)
    torch.testing.assert_close(got[:, :, :8], src[:, :4, :, :40], rtol=0, atol=0)
    torch.testing.assert_close(got[:, :, 8:], before[name].view(3, 4, 10, 40)[:, :, 8:],
                               rtol=0, atol=0)
    assert str(report.sources[name]) == (
        'stages.3.blocks.1.attn.w_msa.qkv.weight.view(3, 6, 8, 48)[:, 0:4, :, 0:40] '
        '(own init: elements 8:10 of dim 2 of (3, 4, 10, 40), 960 values)')
    assert set(report.partial) == {f'stages.3.blocks.3.attn.w_msa.{n}' for n in
                                   ('qkv.weight', 'qkv.bias', 'proj.weight')}


def test_report_names_each_source_and_slice(tmp_path, monkeypatch):
    twin = twin_of('convnext')
    path = save(tmp_path, checkpoint('convnext', 'official', twin))
    lines = []
    monkeypatch.setattr('steps_mm.models.pretrained.selection.print_log',
                        lambda msg, **kw: lines.append((msg, kw.get('level'))))
    _, _, report = selected('convnext', path)
    table = report.lines()
    assert 'stages.2.1.pointwise_conv1.weight <- stages.2.3.pointwise_conv1.weight' \
           '[0:64, 0:16]' in table  # step 1 (16 wide, 2 blocks), block 1
    assert 'stages.3.3.depthwise_conv.weight <- stages.3.1.depthwise_conv.weight' \
           '[0:40]' in table  # step 2 (40 wide, 1 block) of stage 4
    assert 'downsample_layers.0.0.weight <- downsample_layers.0.0.weight' in table
    assert 'norm0.weight <- own init' in table
    assert len(table) == len(build('convnext', 'steps').state_dict())
    # the loader's line, the selection's, and the table at DEBUG level
    assert [level for _, level in lines] == [None, None, 10]
    assert 'ConvNeXt official names' in lines[0][0] and 'dropped 2' in lines[0][0]
    total = len(report.sources)
    assert lines[1][0].startswith(f'select_from_twin StepsConvNeXt(layout=\'steps\', '
                                  f'custom arch) <- {path} (ConvNeXt official names')
    assert f'{total} tensors selected ({len(report.copied)} copied whole' in lines[1][0]
    assert 'own init 6 [norm0.weight, norm0.bias, norm1.weight +3 more]' in lines[1][0]
    assert 'twin tensors unused 0 []' in lines[1][0]


# ---- refusing wrong checkpoints -------------------------------------------------------
def test_wrong_family_is_refused(tmp_path):
    path = save(tmp_path, checkpoint('swin', 'timm', twin_of('swin')))
    with pytest.raises(PretrainedError, match=r"StepsConvNeXt\(layout='steps', custom "
                       r"arch\) selects from a checkpoint of its twin StepsConvNeXt\("
                       r"layout='sequential'.*is not one: this looks like a Swin "
                       r'checkpoint.*Give a .* checkpoint \(steps_mm/mmpretrain, '
                       r'official, timm names\)'):
        selected('convnext', path)


def test_wrong_arch_is_refused(tmp_path):
    other = randomized(StepsConvNeXt(dict(HIER, depths=[1, 1, 2, 2]), 'sequential',
                                     out_indices=(3,)))
    path = save(tmp_path, {'model': written(other, convnext_official([1, 1, 2, 2]))})
    with pytest.raises(PretrainedError, match=r'is not one: .*cannot load .*missing 18 '
                                              r'keys \[stages.2.2'):
        selected('convnext', path)


def test_a_steps_checkpoint_is_refused_naming_pretrained(tmp_path):
    steps = build('convnext', 'steps')
    path = save(tmp_path, mm(steps.state_dict()))
    with pytest.raises(PretrainedError, match=r"shape mismatches.*itself loads with "
                                              r"init_cfg=dict\(type='Pretrained'\)"):
        selected('convnext', path)


def test_pretrained_and_selection_together_are_refused(tmp_path):
    path = save(tmp_path, mm(twin_of('convnext').state_dict()))
    model = build('convnext', 'steps', init_cfg=[
        dict(type='Pretrained', checkpoint=path),
        dict(type='SelectFromTwin', checkpoint=path)])
    with pytest.raises(PretrainedError, match='both a Pretrained and a SelectFromTwin'):
        model.init_weights()


# ---- init_cfg and the converter -------------------------------------------------------
def test_init_cfg_from_a_config_dict(tmp_path):
    """Built by the registry from a config dict: the family's default init runs
    first (own-init elements: TruncNormal std .02, not torch's default), then the
    selection."""
    twin = twin_of('swin')
    path = save(tmp_path, checkpoint('swin', 'official', twin))
    cfg = dict(type='StepsSwinTransformer', arch=dict(HIER, heads=HEADS),
               layout='steps', window_size=2, out_indices=(0, 1, 2, 3),
               init_cfg=dict(type='SelectFromTwin', checkpoint=path))
    model = MODELS.build(cfg)
    model.init_weights()
    assert model.is_init
    before = model.state_dict()
    own = before['stages.3.blocks.3.attn.w_msa.qkv.weight'].view(3, 4, 10, 40)[:, :, 8:]
    assert 0.015 < own.std() < 0.025
    assert before['norm0.weight'].eq(1).all()  # Constant(1): the default init
    check_selected('swin', model, before, twin.state_dict())


def test_init_cfg_from_a_twin_classifier_checkpoint(tmp_path):
    """The demo's path: a Steps classifier whose backbone selects from the
    checkpoint mmpretrain writes for the twin's classifier (backbone.*, head.*)."""
    torch.manual_seed(0)
    twin = randomized(StepsImageClassifier(
        dict(type='StepsConvNeXt', arch=HIER, layout='sequential'), num_classes=5))
    path = save(tmp_path, {'state_dict': twin.state_dict(), 'meta': {'epoch': 3}})
    model = StepsImageClassifier(dict(
        type='StepsConvNeXt', arch=HIER, layout='steps',
        init_cfg=dict(type='SelectFromTwin', checkpoint=path)), num_classes=5)
    head = model.head.weight.clone()
    model.init_weights()
    ours, theirs = model.backbone.state_dict(), twin.backbone.state_dict()
    torch.testing.assert_close(ours['norm3.weight'], theirs['norm3.weight'])
    torch.testing.assert_close(ours['stages.2.1.gamma'], theirs['stages.2.3.gamma'][:16])
    torch.testing.assert_close(model.head.weight, head)  # the head is not loaded


def test_mmengine_initialize_runs_the_registered_initialiser(tmp_path):
    twin = twin_of('deit')
    path = save(tmp_path, checkpoint('deit', 'official', twin))
    model = build('deit', 'steps')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    initialize(model, dict(type='SelectFromTwin', checkpoint=path))
    check_selected('deit', model, before, twin.state_dict())
    with pytest.raises(TypeError, match='initialises a Steps backbone, not a Linear'):
        initialize(torch.nn.Linear(2, 2), dict(type='SelectFromTwin', checkpoint=path))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converter_writes_a_steps_checkpoint_that_pretrained_loads(tmp_path, capsys):
    twin = twin_of('convnext')
    src = save(tmp_path, checkpoint('convnext', 'timm', twin))
    dst = str(tmp_path / 'steps.pth')
    load_tool('convert_checkpoint').main([src, dst, '--family', 'convnext', '--arch',
                                          json.dumps(HIER), '--select-from-twin'])
    out = capsys.readouterr().out
    assert 'ConvNeXt timm names): matched' in out and 'select_from_twin' in out
    n = len(StepsConvNeXt(HIER, 'steps', out_indices=3).state_dict())
    assert f'steps.pth: {n} backbone tensors' in out
    assert torch.load(dst)['meta']['steps_mm']['layout'] == 'steps'
    model = build('convnext', 'steps',
                  init_cfg=dict(type='Pretrained', checkpoint=dst))
    model.init_weights()
    check_selected('convnext', model, model.state_dict(), twin.state_dict())


# ---- every shipped Steps config -------------------------------------------------------
def steps_configs():
    from steps_mm.analysis.configs import shipped_configs
    return [c for c in shipped_configs(ROOT)[0] if 'steps' in osp.basename(c)]


#: one config per family in the fast lane
FAST = {'steps_convnext_maskrcnn.py', 'mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py',
        'steps-resnet18_8xb32_in1k.py', 'steps-deit-tiny_4xb256_in1k.py'}


@pytest.mark.parametrize('config', sampled(steps_configs(),
                                           lambda c: osp.basename(c) in FAST),
                         ids=[osp.basename(c) for c in steps_configs()])
def test_every_shipped_steps_backbone_selects_every_tensor(config):
    """At full size, on the meta device (shapes only): every tensor of the
    config's backbone has a source in its twin's checkpoint; none is left at own
    init but the output norms a classifier's checkpoint lacks."""
    cfg = Config.fromfile(config).model.backbone
    if cfg.get('layout', 'steps') != 'steps':
        pytest.skip('a baseline config')
    cfg.init_cfg = None
    with torch.device('meta'):
        model = MODELS.build(cfg)
        twin = type(model).for_checkpoint(model.init_arguments.get(model.arch_arg))
        report = select_state_dict(model, twin.state_dict())
    norms = type(model).optional_keys
    assert all(re.fullmatch(norms, k) for k in report.own_init), report.own_init
    assert report.backbone.startswith('Steps-') and report.twin == report.backbone[6:]
    # a twin tensor nothing takes is in a block that no step's depth reaches
    # (Swin-S/B: steps of 6, 3, 15 blocks thin the twin's 18 and leave 3 out)
    assert all(re.match(r'(stages\.\d+\.(blocks\.)?|layers\.)\d+\.', k)
               for k in report.unused), report.unused
