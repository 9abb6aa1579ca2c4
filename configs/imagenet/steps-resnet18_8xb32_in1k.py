# Steps-ResNet-18 on ImageNet-1K (StepsNet layout):
# mmpretrain's resnet18_8xb32_in1k recipe with only the backbone swapped.
# Output: NCHW map of the last stage; the recipe's GlobalAveragePooling neck pools it.
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

# steps_mm's modules in mmpretrain's registries (and, without torchvision,
# its stand-in): docs/runtime.md
custom_imports = dict(imports=['steps_mm.pretraining'],
                      allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsResNet', depth=18, layout='steps', out_indices=(3, )))
