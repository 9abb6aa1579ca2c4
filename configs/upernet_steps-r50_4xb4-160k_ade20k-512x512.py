# UperNet, Steps-ResNet-50, ADE20K 512x512, 160k iterations: the stock mmseg
# ResNet-50 recipe (SGD 0.01, poly schedule, SyncBN, BatchNorm trained), with
# only the backbone swapped.
# NOTE: the stock backbone is ResNetV1c (deep stem: three 3x3 convs);
# StepsResNet has ResNet's plain stem (one 7x7 conv, mmdet's ResNet), so the
# baseline twin is a ResNet-50 V1b, not the V1c of the stock recipe.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # the stock open-mmlab://resnet50_v1c weights do not fit (see above)
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='StepsResNet',
        depth=50,
        layout='steps',
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        norm_eval=False,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-resnet50_8xb32_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-resnet50_8xb32_in1k/epoch_100.pth',
            pretrain_config='configs/imagenet/steps-resnet50_8xb32_in1k.py')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024))
