# Cascade Mask R-CNN + FPN (4conv1fc box heads, GIoU loss), Steps-ConvNeXt-T, COCO,
# 3x with multi-scale crop: the stock mmdet ConvNeXt-T recipe (AdamW 2e-4, wd 0.05,
# layer-wise lr decay 0.7 over 6 layers, drop path 0.4, layer scale 1.0, AMP), with
# only the backbone swapped.
_base_ = 'mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsConvNeXt',
        arch='tiny',
        layout='steps',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-convnext-tiny_32xb128_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-convnext-tiny_32xb128_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-convnext-tiny_32xb128_in1k.py')),
    neck=dict(in_channels=[96, 192, 384, 768]))

# AMP on a GPU, fp32 OptimWrapper on a CPU; the stock lr decay recipe
# (paramwise_cfg) with the constructor that numbers the Steps blocks (the same
# groups as the stock one on the sequential layout)
optim_wrapper = dict(type='AutoAmpOptimWrapper',
                     constructor='StepsLayerDecayOptimizerConstructor')
