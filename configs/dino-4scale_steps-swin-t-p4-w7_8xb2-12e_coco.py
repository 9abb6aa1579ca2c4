# DINO 4-scale, Steps-Swin-T, COCO, 12 epochs. mmdet ships DINO with Swin-L only
# (5 scales), as the ResNet-50 recipe with the backbone swapped; so here: the stock
# DINO 4-scale ResNet-50 recipe (AdamW 1e-4, wd 1e-4, backbone lr x0.1, grad clip
# 0.1) with a Swin-T backbone (drop path 0.2 as mmdet's Swin-L DINO and Swin-T
# detectors) reading stages 2-4 (strides 8, 16, 32; the ChannelMapper adds the 4th
# scale).
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'

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
        out_indices=(1, 2, 3),
        drop_path_rate=0.2,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-swin-tiny_16xb64_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-swin-tiny_16xb64_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-swin-tiny_16xb64_in1k.py')),
    neck=dict(in_channels=[192, 384, 768]))
