# Mask R-CNN + FPN, Steps-Swin-T, COCO, 3x with multi-scale crop.
# The stock mmdet Swin-T recipe (AdamW 1e-4, wd 0.05, no decay on norms and
# relative position bias tables, drop path 0.2), with only the backbone swapped.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'

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
