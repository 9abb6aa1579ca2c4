"""Checkpoints of the baselines in the names of their own code bases (official,
timm, torchvision, mmseg, mmengine), written from our sequential models with key
lists built by hand from those code bases, independently of the loader's rules;
and the tiny archs and builders the checkpoint tests share."""
import re

import torch

from steps_mm.models import StepsConvNeXt, StepsResNet, StepsSwinTransformer, StepsViT

WB = ('weight', 'bias')
BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')

CONVNEXT = dict(channels=[8, 16, 24, 32], depths=[1, 1, 2, 1],
                steps=[[(8, 1)], [(16, 1)], [(16, 1), (24, 1)], [(16, 1), (32, 1)]])
SWIN = dict(channels=[8, 16, 24, 32], depths=[1, 2, 2, 1],
            heads={8: 1, 16: 2, 24: 2, 32: 2},
            steps=[[(8, 1)], [(16, 2)], [(16, 2), (24, 1)], [(16, 1), (32, 1)]])
VIT = dict(channels=[16], depths=[3], heads={8: 1, 16: 2}, steps=[[(8, 2), (16, 1)]])


def randomized(model):
    """Every parameter and BN statistic random, so that every loaded value matters
    (the default init has layer scales of 1e-6 and zero-initialised BN)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and 'relative_position_index' not in name:
                t.copy_(torch.rand_like(t) + 0.5 if 'running_var' in name
                        else torch.randn_like(t) * 0.2)
    model.eval()  # not chained: mmdet's train() returns None
    return model


def convnext(**kw):  # one output norm, as a classifier (and its checkpoints)
    kw.setdefault('gap_before_final_norm', False)
    kw.setdefault('out_indices', (3,))
    return StepsConvNeXt(kw.pop('arch', CONVNEXT), **kw)


def swin(**kw):
    kw.setdefault('window_size', 3)
    kw.setdefault('out_indices', (3,))
    return StepsSwinTransformer(kw.pop('arch', SWIN), gap_before_final_norm=False, **kw)


def resnet(**kw):
    return StepsResNet(18, out_indices=(0, 1, 2, 3), **kw)


def vit(**kw):
    kw.setdefault('img_size', 32)
    return StepsViT(kw.pop('arch', VIT), out_type='featmap',
                    out_indices=(0, 2), **kw)


INPUTS = {convnext: (1, 3, 64, 64), swin: (1, 3, 48, 40), resnet: (1, 3, 32, 32),
          vit: (1, 3, 32, 32)}


# ---- reference key lists of the other code bases, by hand: (their key, ours) --------
def wb(theirs, ours, names=WB):
    return [(f'{theirs}.{n}', f'{ours}.{n}') for n in names]


def convnext_official(depths):
    pairs = [p for i in range(4) for j in (0, 1)
             for p in wb(f'downsample_layers.{i}.{j}', f'downsample_layers.{i}.{j}')]
    for i, d in enumerate(depths):
        for b in range(d):
            for theirs, ours in (('dwconv', 'depthwise_conv'), ('norm', 'norm'),
                                 ('pwconv1', 'pointwise_conv1'),
                                 ('pwconv2', 'pointwise_conv2')):
                pairs += wb(f'stages.{i}.{b}.{theirs}', f'stages.{i}.{b}.{ours}')
            pairs.append((f'stages.{i}.{b}.gamma', f'stages.{i}.{b}.gamma'))
    return pairs + wb('norm', 'norm3'), ['head.weight', 'head.bias']


def convnext_timm(depths):
    pairs = wb('stem.0', 'downsample_layers.0.0') + wb('stem.1', 'downsample_layers.0.1')
    for i, d in enumerate(depths):
        if i:
            pairs += wb(f'stages.{i}.downsample.0', f'downsample_layers.{i}.0')
            pairs += wb(f'stages.{i}.downsample.1', f'downsample_layers.{i}.1')
        for b in range(d):
            for theirs, ours in (('conv_dw', 'depthwise_conv'), ('norm', 'norm'),
                                 ('mlp.fc1', 'pointwise_conv1'),
                                 ('mlp.fc2', 'pointwise_conv2')):
                pairs += wb(f'stages.{i}.blocks.{b}.{theirs}', f'stages.{i}.{b}.{ours}')
            pairs.append((f'stages.{i}.blocks.{b}.gamma', f'stages.{i}.{b}.gamma'))
    return pairs + wb('head.norm', 'norm3'), ['head.fc.weight', 'head.fc.bias']


def swin_pairs(depths, timm):
    pairs = wb('patch_embed.proj', 'patch_embed.projection') + \
        wb('patch_embed.norm', 'patch_embed.norm')
    for i, d in enumerate(depths):
        for b in range(d):
            src, dst = f'layers.{i}.blocks.{b}', f'stages.{i}.blocks.{b}'
            for theirs, ours in (('norm1', 'norm1'), ('attn.qkv', 'attn.w_msa.qkv'),
                                 ('attn.proj', 'attn.w_msa.proj'), ('norm2', 'norm2'),
                                 ('mlp.fc1', 'ffn.layers.0.0'),
                                 ('mlp.fc2', 'ffn.layers.1')):
                pairs += wb(f'{src}.{theirs}', f'{dst}.{ours}')
            pairs.append((f'{src}.attn.relative_position_bias_table',
                          f'{dst}.attn.w_msa.relative_position_bias_table'))
        if i < len(depths) - 1:  # timm merges at the start of the next stage
            src = f'layers.{i + 1 if timm else i}.downsample'
            pairs.append((f'{src}.reduction.weight',
                          f'stages.{i}.downsample.reduction.weight'))
            pairs += wb(f'{src}.norm', f'stages.{i}.downsample.norm')
    head = ['head.fc.weight', 'head.fc.bias'] if timm else ['head.weight', 'head.bias']
    return pairs + wb('norm', 'norm3'), head


def to_official_merge(value):
    """Ours: column c*4 + 2*row + col (nn.Unfold order). Official: the blocks
    x0 | x1 | x2 | x3 of the (row, col) offsets (0,0), (1,0), (0,1), (1,1)."""
    C = value.shape[-1] // 4
    out = torch.empty_like(value)
    for p, (row, col) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        out[..., p * C:(p + 1) * C] = value[..., 2 * row + col::4]
    return out


def resnet_torchvision(model):
    """torchvision's layer{i+1}.{k}: k = 0 our first block, k > 0 stages.{i}.{k-1}."""
    pairs = [('conv1.weight', 'conv1.weight')] + wb('bn1', 'bn1', BN)
    for ours in model.state_dict():
        m = re.match(r'first_blocks\.(\d)\.(.*)', ours) or \
            re.match(r'stages\.(\d)\.(\d+)\.(.*)', ours)
        if m and ours.startswith('first_blocks'):
            pairs.append((f'layer{int(m[1]) + 1}.0.{m[2]}', ours))
        elif m:
            pairs.append((f'layer{int(m[1]) + 1}.{int(m[2]) + 1}.{m[3]}', ours))
    return pairs, ['fc.weight', 'fc.bias']


def vit_timm(depth):
    pairs = [('cls_token', 'cls_token'), ('pos_embed', 'pos_embed')] + \
        wb('patch_embed.proj', 'patch_embed.projection')
    for k in range(depth):
        for theirs, ours in (('norm1', 'ln1'), ('attn.qkv', 'attn.qkv'),
                             ('attn.proj', 'attn.proj'), ('norm2', 'ln2'),
                             ('mlp.fc1', 'ffn.layers.0.0'), ('mlp.fc2', 'ffn.layers.1')):
            pairs += wb(f'blocks.{k}.{theirs}', f'layers.{k}.{ours}')
    return pairs + wb('norm', 'ln1'), ['head.weight', 'head.bias']


def vit_mmseg(depth):
    """mmseg's ViT: nn.MultiheadAttention (in_proj, out_proj), else our names."""
    pairs = []
    for name in ('cls_token', 'pos_embed', 'patch_embed.projection.weight',
                 'patch_embed.projection.bias', 'ln1.weight', 'ln1.bias'):
        pairs.append((name, name))
    for k in range(depth):
        pairs += [(f'layers.{k}.attn.attn.in_proj_{n}', f'layers.{k}.attn.qkv.{n}')
                  for n in WB]
        pairs += wb(f'layers.{k}.attn.attn.out_proj', f'layers.{k}.attn.proj')
        for part in ('ln1', 'ln2', 'ffn.layers.0.0', 'ffn.layers.1'):
            pairs += wb(f'layers.{k}.{part}', f'layers.{k}.{part}')
    return pairs, []


def written(model, pairs_and_extra, transform=lambda k, v: v):
    """The state dict of ``model`` under the other code base's names, with its
    classifier head (random) added; every one of our keys must be written."""
    pairs, extra = pairs_and_extra
    ours = model.state_dict()
    written_keys = {o for _, o in pairs}
    assert not {k for k in ours if 'relative_position_index' not in k} - written_keys
    state = {theirs: transform(theirs, ours[o].clone()) for theirs, o in pairs}
    return state | {k: torch.randn(3) for k in extra}


def swin_transform(key, value):
    return to_official_merge(value) if 'downsample' in key else value


def mm(state, prefix='backbone.'):
    """An mmengine checkpoint (``neck.*``, ``head.*`` stay outside the prefix)."""
    return {'state_dict': {(k if k.startswith(('neck.', 'head.')) else prefix + k): v
                           for k, v in state.items()},
            'meta': {'epoch': 1}}
