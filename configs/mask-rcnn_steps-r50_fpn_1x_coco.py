# Mask R-CNN + FPN, Steps-ResNet-50, COCO, 1x: the stock mmdet ResNet-50 recipe
# (SGD 0.02, 12 epochs, stem and stage 1 frozen, BatchNorm statistics frozen),
# with only the backbone swapped.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsResNet',
        depth=50,
        layout='steps',
        out_indices=(0, 1, 2, 3),
        # frozen_stages=1 and norm_eval=True are the stock values and assume
        # ImageNet weights; from scratch use frozen_stages=-1, norm_eval=False.
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-resnet50_8xb32_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-resnet50_8xb32_in1k/epoch_100.pth',
            pretrain_config='configs/imagenet/steps-resnet50_8xb32_in1k.py')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
