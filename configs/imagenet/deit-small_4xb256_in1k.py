# DeiT-S on ImageNet-1K (the sequential layout: the residual baseline on the same code):
# mmpretrain's deit-small_4xb256_in1k recipe with only the backbone swapped.
# Output: the class token after the final norm, as mmpretrain's VisionTransformer gives its head.
_base_ = 'mmpretrain::deit/deit-small_4xb256_in1k.py'

# steps_mm's modules in mmpretrain's registries (and, without torchvision,
# its stand-in): docs/runtime.md
custom_imports = dict(imports=['steps_mm.pretraining'],
                      allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsViT', arch='deit-small', layout='sequential', img_size=224,
        patch_size=16,
        out_type='cls_token'))
