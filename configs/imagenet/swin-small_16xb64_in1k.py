# Swin-S on ImageNet-1K (the sequential layout: the residual baseline on the same code):
# mmpretrain's swin-small_16xb64_in1k recipe with only the backbone swapped.
# Output: the normalised NCHW map of the last stage; the recipe's GlobalAveragePooling neck pools it.
_base_ = 'mmpretrain::swin_transformer/swin-small_16xb64_in1k.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsSwinTransformer', arch='small', layout='sequential',
        drop_path_rate=0.3, out_indices=(3, )))
