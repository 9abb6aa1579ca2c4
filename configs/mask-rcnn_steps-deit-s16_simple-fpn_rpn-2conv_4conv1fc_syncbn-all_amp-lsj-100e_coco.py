# Mask R-CNN, Steps-DeiT-S through a simple feature pyramid (ViTDet), COCO, LSJ 100
# epochs. mmdet ships no plain-ViT detector outside its projects/, so our choice:
# mmdet's stock LSJ Mask R-CNN (strong_baselines: "Benchmarking Detection Transfer
# Learning with Vision Transformers", ViTDet's predecessor: 1024x1024 large-scale
# jitter, 100 epochs at batch 64, lr steps at epochs 88 and 96, 2-conv RPN,
# 4conv1fc box head, SyncBN in neck and heads, AMP) with ViTDet's plain-backbone
# parts: the neck builds strides 4-32 from the last stride-16 map
# (SimpleFeaturePyramid), and ViTDet's optimizer (AdamW 1e-4, wd 0.1, layer-wise
# lr decay 0.7 over 12 layers, drop path 0.1; no weight decay on norms, biases,
# position embedding and class token). Batch, schedule and augmentation are the
# stock recipe's, which are ViTDet's too.
# Input size: the model trains on 1024x1024 images (LSJ crops padded to that size),
# so the position embedding is made for a 64x64 patch grid (img_size=1024: the
# ImageNet 14x14 one is resized once on loading); test images (1333x800 at most,
# padded to a multiple of 32) get it resized to their grid at each forward.
# The final norm is applied (final_norm=True, unlike ViTDet): its pretrained
# weights are then used, and no parameter is left without a gradient under DDP.
_base_ = 'mmdet::strong_baselines/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsViT',
        arch='deit-small',
        layout='steps',
        img_size=(1024, 1024),
        out_indices=(-1, ),  # the last block's output, stride 16
        drop_path_rate=0.1,
        final_norm=True,
        out_type='featmap',
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-deit-small_4xb256_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-deit-small_4xb256_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-deit-small_4xb256_in1k.py')),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=[384],
        out_channels=256,
        scales=(4, 2, 1, .5),
        num_outs=5,
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    # torch's SyncBN in the heads in place of the stock mmcv MMSyncBN, which needs
    # an initialised process group to be built at all (so the model could not be
    # built by a single-process run, tools/flops.py or a test); the stock recipe
    # chose MMSyncBN for empty RoI batches, which torch's SyncBN handles now
    roi_head=dict(
        bbox_head=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
        mask_head=dict(norm_cfg=dict(type='SyncBN', requires_grad=True))))

# ViTDet's optimizer; AMP on a GPU, fp32 OptimWrapper on a CPU
optim_wrapper = dict(
    type='AutoAmpOptimWrapper',
    constructor='StepsLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=12),
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999),
                   weight_decay=0.1))
