# ConvNeXt-B on ImageNet-1K (the sequential layout: the residual baseline on the same code):
# mmpretrain's convnext-base_32xb128_in1k recipe with only the backbone swapped.
# Output: pooled, then normalised, as mmpretrain's ConvNeXt (the recipe has no neck).
_base_ = 'mmpretrain::convnext/convnext-base_32xb128_in1k.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsConvNeXt', arch='base', layout='sequential',
        drop_path_rate=0.5, out_indices=(3, ), gap_before_final_norm=True))
