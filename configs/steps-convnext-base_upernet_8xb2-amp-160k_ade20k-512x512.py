# UperNet, Steps-ConvNeXt-b, ADE20K 512x512, 160k iterations: the stock mmseg
# ConvNeXt-b recipe with only the backbone swapped.
_base_ = 'mmseg::convnext/convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsConvNeXt',
        arch='base',
        layout='steps',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-convnext-base_32xb128_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-convnext-base_32xb128_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-convnext-base_32xb128_in1k.py')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))

# AMP on a GPU, fp32 OptimWrapper on a CPU (the stock AmpOptimWrapper needs a GPU).
# The stock lr decay recipe (paramwise_cfg) with a constructor that numbers the
# Steps blocks (the stock one assumes ConvNeXt's block counts; both give the same
# groups on the sequential layout).
optim_wrapper = dict(type='AutoAmpOptimWrapper',
                     constructor='StepsLayerDecayOptimizerConstructor')
