# ConvNeXt-S on ImageNet-1K (the sequential layout: the residual baseline on the same code):
# mmpretrain's convnext-small_32xb128_in1k recipe with only the backbone swapped.
# Output: pooled, then normalised, as mmpretrain's ConvNeXt (the recipe has no neck).
_base_ = 'mmpretrain::convnext/convnext-small_32xb128_in1k.py'

# steps_mm's modules in mmpretrain's registries (and, without torchvision,
# its stand-in): docs/runtime.md
custom_imports = dict(imports=['steps_mm.pretraining'],
                      allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsConvNeXt', arch='small', layout='sequential',
        drop_path_rate=0.4, out_indices=(3, ), gap_before_final_norm=True))
