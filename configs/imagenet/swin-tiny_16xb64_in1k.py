# Swin-T on ImageNet-1K (the sequential layout: the residual baseline on the same code):
# mmpretrain's swin-tiny_16xb64_in1k recipe with only the backbone swapped.
# Output: the normalised NCHW map of the last stage; the recipe's GlobalAveragePooling neck pools it.
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'

# steps_mm's modules in mmpretrain's registries (and, without torchvision,
# its stand-in): docs/runtime.md
custom_imports = dict(imports=['steps_mm.pretraining'],
                      allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsSwinTransformer', arch='tiny', layout='sequential',
        drop_path_rate=0.2, out_indices=(3, )))
