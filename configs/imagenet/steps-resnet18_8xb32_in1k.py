# Steps-ResNet-18 on ImageNet-1K (StepsNet layout):
# mmpretrain's resnet18_8xb32_in1k recipe with only the backbone swapped.
# Output: NCHW map of the last stage; the recipe's GlobalAveragePooling neck pools it.
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsResNet', depth=18, layout='steps', out_indices=(3, )))
