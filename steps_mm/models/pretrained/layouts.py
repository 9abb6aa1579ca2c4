"""The key maps: per backbone family, one ``Layout`` per checkpoint naming, each
a list of rules ``regex -> target`` (or ``DROP``). A source key must match a rule
of the chosen layout; nothing is renamed by guessing."""
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Union

import torch

DROP = None  # rule target: the source key is dropped on purpose (a classifier head)


@dataclass
class Rule:
    pattern: str
    #: ``re`` template (``\\1``), ``fn(match, last_stage) -> name``, or DROP
    target: Union[str, Callable, None]
    transform: Optional[Callable] = None  # value transform (channel order)


@dataclass
class Layout:
    family: str
    name: str
    rules: List[Rule]
    baseline: bool = False  # the baseline's own names: only layout='sequential'

    def map(self, key: str, last: int):
        """-> (rule, target name or DROP), or None when no rule matches."""
        for rule in self.rules:
            m = re.fullmatch(rule.pattern, key)
            if m:
                target = rule.target
                if callable(target):
                    target = target(m, last)
                elif target is not DROP:
                    target = m.expand(target)
                return rule, target
        return None


W = r'(weight|bias)'
BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


def final_norm(m, last):  # the classifier's norm after pooling is the last output norm
    return f'norm{last}.{m[1]}'


# ---- ConvNeXt: ours = mmpretrain; official (facebookresearch); timm ----------------
_CONVNEXT_DOWN = Rule(rf'downsample_layers\.(\d+)\.([01])\.{W}',
                      r'downsample_layers.\1.\2.\3')


def _convnext_block(prefix, names):
    return [Rule(rf'{prefix}\.{src}\.{W}', rf'stages.\1.\2.{dst}.\3')
            for src, dst in names] + [Rule(rf'{prefix}\.gamma', r'stages.\1.\2.gamma')]


_CONVNEXT_MM = [_CONVNEXT_DOWN, *_convnext_block(r'stages\.(\d+)\.(\d+)', [
    (n, n) for n in ('depthwise_conv', 'norm', 'pointwise_conv1', 'pointwise_conv2')]),
    Rule(rf'norm(\d+)\.{W}', r'norm\1.\2'), Rule(rf'norm\.{W}', final_norm)]
_CONVNEXT_OFFICIAL = [_CONVNEXT_DOWN, *_convnext_block(r'stages\.(\d+)\.(\d+)', [
    ('dwconv', 'depthwise_conv'), ('norm', 'norm'), ('pwconv1', 'pointwise_conv1'),
    ('pwconv2', 'pointwise_conv2')]),
    Rule(rf'norm\.{W}', final_norm), Rule(rf'head\.{W}', DROP)]
_CONVNEXT_TIMM = [
    Rule(rf'stem\.([01])\.{W}', r'downsample_layers.0.\1.\2'),
    Rule(rf'stages\.(\d+)\.downsample\.([01])\.{W}', r'downsample_layers.\1.\2.\3'),
    *_convnext_block(r'stages\.(\d+)\.blocks\.(\d+)', [
        ('conv_dw', 'depthwise_conv'), ('norm', 'norm'), ('mlp.fc1', 'pointwise_conv1'),
        ('mlp.fc2', 'pointwise_conv2')]),
    Rule(rf'head\.norm\.{W}', final_norm), Rule(rf'head\.fc\.{W}', DROP)]


# ---- Swin: ours = mmdet/mmseg/mmpretrain; official (microsoft); timm >= 0.9 ----------
def merge_order(value: torch.Tensor) -> torch.Tensor:
    """PatchMerging weights from the official order of the 2x2 neighbours,
    x0..x3 = (row, col) offsets (0,0), (1,0), (0,1), (1,1), channel-major blocks
    ``[x0 | x1 | x2 | x3]``, to ours (``nn.Unfold``: channel c, offset 2*row+col),
    as mmdet's ``swin_converter``."""
    x = value.reshape(*value.shape[:-1], 4, value.shape[-1] // 4)
    return x[..., [0, 2, 1, 3], :].transpose(-1, -2).reshape(value.shape)


_SWIN_BLOCK = r'layers\.(\d+)\.blocks\.(\d+)\.'
_SWIN_BASELINE = [
    Rule(rf'patch_embed\.proj\.{W}', r'patch_embed.projection.\1'),
    Rule(rf'patch_embed\.norm\.{W}', r'patch_embed.norm.\1'),
    Rule(rf'{_SWIN_BLOCK}(norm1|norm2)\.{W}', r'stages.\1.blocks.\2.\3.\4'),
    Rule(rf'{_SWIN_BLOCK}attn\.(qkv|proj)\.{W}', r'stages.\1.blocks.\2.attn.w_msa.\3.\4'),
    Rule(rf'{_SWIN_BLOCK}attn\.relative_position_bias_table',
         r'stages.\1.blocks.\2.attn.w_msa.relative_position_bias_table'),
    Rule(rf'{_SWIN_BLOCK}mlp\.fc1\.{W}', r'stages.\1.blocks.\2.ffn.layers.0.0.\3'),
    Rule(rf'{_SWIN_BLOCK}mlp\.fc2\.{W}', r'stages.\1.blocks.\2.ffn.layers.1.\3'),
    Rule(rf'norm\.{W}', final_norm)]
_SWIN_MERGE = r'layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)'
_SWIN_OFFICIAL = _SWIN_BASELINE + [
    Rule(_SWIN_MERGE, r'stages.\1.downsample.\2', merge_order), Rule(rf'head\.{W}', DROP)]
_SWIN_TIMM = _SWIN_BASELINE + [  # timm merges at the start of the next stage
    Rule(_SWIN_MERGE, lambda m, last: f'stages.{int(m[1]) - 1}.downsample.{m[2]}',
         merge_order), Rule(rf'head\.fc\.{W}', DROP)]
_SWIN_MM = [
    Rule(rf'patch_embed\.(projection|norm)\.{W}', r'patch_embed.\1.\2'),
    Rule(r'stages\.(\d+)\.blocks\.(\d+)\.(norm1|norm2|attn\.w_msa\.qkv|attn\.w_msa\.proj|'
         rf'ffn\.layers\.0\.0|ffn\.layers\.1)\.{W}', r'stages.\1.blocks.\2.\3.\4'),
    Rule(r'stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.relative_position_bias_table',
         r'stages.\1.blocks.\2.attn.w_msa.relative_position_bias_table'),
    Rule(r'stages\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)',
         r'stages.\1.downsample.\2'),
    Rule(rf'norm(\d+)\.{W}', r'norm\1.\2'),
    Rule(rf'norm\.{W}', final_norm)]  # mmseg's converted classification checkpoints


# ---- ResNet: ours; torchvision = timm = mmdet (layer{i}.{k}) -------------------------
_RESNET_PART = (rf'(conv[123]\.weight|bn[123]\.{BN}|downsample\.0\.weight|'
                rf'downsample\.1\.{BN})')


def _resnet_block(m, last):
    i, k = int(m[1]) - 1, int(m[2])
    return f'first_blocks.{i}.{m[3]}' if k == 0 else f'stages.{i}.{k - 1}.{m[3]}'


_RESNET_STEM = [Rule(r'conv1\.weight', 'conv1.weight'), Rule(rf'bn1\.{BN}', r'bn1.\1')]
_RESNET_MM = _RESNET_STEM + [
    Rule(rf'first_blocks\.(\d+)\.{_RESNET_PART}', r'first_blocks.\1.\2'),
    Rule(rf'stages\.(\d+)\.(\d+)\.{_RESNET_PART}', r'stages.\1.\2.\3')]
_RESNET_TORCHVISION = _RESNET_STEM + [
    Rule(rf'layer(\d)\.(\d+)\.{_RESNET_PART}', _resnet_block), Rule(rf'fc\.{W}', DROP)]


# ---- DeiT: ours = mmpretrain (+ mmseg's nn.MultiheadAttention); timm = official ------
_VIT_TOKENS = [Rule('cls_token', 'cls_token'), Rule('pos_embed', 'pos_embed')]
_VIT_MM = _VIT_TOKENS + [
    Rule(rf'patch_embed\.projection\.{W}', r'patch_embed.projection.\1'),
    Rule(rf'layers\.(\d+)\.(ln1|ln2|attn\.qkv|attn\.proj|ffn\.layers\.0\.0|'
         rf'ffn\.layers\.1)\.{W}', r'layers.\1.\2.\3'),
    Rule(rf'layers\.(\d+)\.attn\.attn\.in_proj_{W}', r'layers.\1.attn.qkv.\2'),
    Rule(rf'layers\.(\d+)\.attn\.attn\.out_proj\.{W}', r'layers.\1.attn.proj.\2'),
    Rule(rf'ln1\.{W}', r'ln1.\1')]
_VIT_TIMM = _VIT_TOKENS + [
    Rule(rf'patch_embed\.proj\.{W}', r'patch_embed.projection.\1'),
    *(Rule(rf'blocks\.(\d+)\.{src}\.{W}', rf'layers.\1.{dst}.\2') for src, dst in (
        ('norm1', 'ln1'), ('attn.qkv', 'attn.qkv'), ('attn.proj', 'attn.proj'),
        ('norm2', 'ln2'), ('mlp.fc1', 'ffn.layers.0.0'), ('mlp.fc2', 'ffn.layers.1'))),
    Rule(rf'norm\.{W}', r'ln1.\1'), Rule(rf'head\.{W}', DROP)]

LAYOUTS = [
    Layout('convnext', 'steps_mm/mmpretrain', _CONVNEXT_MM),
    Layout('convnext', 'official', _CONVNEXT_OFFICIAL, baseline=True),
    Layout('convnext', 'timm', _CONVNEXT_TIMM, baseline=True),
    Layout('swin', 'steps_mm/mmdet/mmseg', _SWIN_MM),
    Layout('swin', 'official', _SWIN_OFFICIAL, baseline=True),
    Layout('swin', 'timm', _SWIN_TIMM, baseline=True),
    Layout('resnet', 'steps_mm', _RESNET_MM),
    Layout('resnet', 'torchvision/timm/mmdet', _RESNET_TORCHVISION, baseline=True),
    Layout('deit', 'steps_mm/mmpretrain/mmseg', _VIT_MM),
    Layout('deit', 'official/timm', _VIT_TIMM, baseline=True),
]
#: backbone class name -> (family, its title in messages)
FAMILIES = {'StepsConvNeXt': ('convnext', 'ConvNeXt'),
            'StepsSwinTransformer': ('swin', 'Swin'),
            'StepsResNet': ('resnet', 'ResNet'), 'StepsViT': ('deit', 'DeiT/ViT')}
TITLES = dict(FAMILIES.values())
BACKBONE_OF = {family: name for name, (family, _) in FAMILIES.items()}
#: backbone keys a checkpoint may lack (left as initialised), and may hold for a
#: backbone that did not build them: output norms, the ViT's final norm
OPTIONAL = {'convnext': r'norm\d+\.(weight|bias)', 'swin': r'norm\d+\.(weight|bias)',
            'resnet': r'(?!)', 'deit': r'ln1\.(weight|bias)'}
#: buffers the model derives from its own settings (window size): never loaded
DERIVED = r'(.+\.)?(relative_position_index|attn_mask)'
ALWAYS_OPTIONAL = r'(.+\.)?num_batches_tracked'  # old torchvision checkpoints lack it
