# DINO 4-scale, Steps-ResNet-50, COCO, 12 epochs: the stock mmdet ResNet-50 recipe
# (AdamW 1e-4, wd 1e-4, backbone lr x0.1, grad clip 0.1, stem and stage 1 frozen,
# BN frozen), with only the backbone swapped. The encoder reads stages 2-4
# (strides 8, 16, 32) through the ChannelMapper, which adds the 4th scale.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsResNet',
        depth=50,
        layout='steps',
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-resnet50_8xb32_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-resnet50_8xb32_in1k/epoch_100.pth',
            pretrain_config='configs/imagenet/steps-resnet50_8xb32_in1k.py')),
    neck=dict(in_channels=[512, 1024, 2048]))
