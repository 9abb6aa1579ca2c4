# Cascade Mask R-CNN + FPN (4conv1fc box heads, GIoU loss), Steps-Swin-T, COCO, 3x
# with multi-scale crop. mmdet ships no Swin cascade config; our choice: the model,
# data pipeline, schedule (36 epochs, steps at 27 and 33, AMP) of mmdet's ConvNeXt-T
# cascade recipe, and the optimizer of mmdet's Swin-T Mask R-CNN 3x recipe (AdamW
# 1e-4, wd 0.05, no weight decay on norms and relative position tables, no layer
# decay) with Swin-T's drop path 0.2: what the Swin paper trains its Cascade Mask
# R-CNN with (3x, multi-scale, AdamW 1e-4, wd 0.05, batch 16).
_base_ = 'mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsSwinTransformer',
        arch='tiny',
        layout='steps',
        window_size=7,
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.2,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-swin-tiny_16xb64_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-swin-tiny_16xb64_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-swin-tiny_16xb64_in1k.py')),
    neck=dict(in_channels=[96, 192, 384, 768]))

# mmdet's Swin-T 3x optimizer; AMP on a GPU, fp32 OptimWrapper on a CPU
optim_wrapper = dict(
    _delete_=True,
    type='AutoAmpOptimWrapper',
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }),
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05))
