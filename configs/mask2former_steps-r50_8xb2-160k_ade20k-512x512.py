# Mask2Former, Steps-ResNet-50, ADE20K 512x512, 160k iterations: the stock mmseg
# ResNet-50 recipe (AdamW 1e-4, wd 0.05, backbone lr x0.1, grad clip 0.01, poly
# schedule; SyncBN with frozen affine parameters, nothing frozen), with only the
# backbone swapped.
_base_ = 'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'

# mmdet.models: the head's pixel decoder, assigner and losses (the stock import)
custom_imports = dict(imports=['steps_mm', 'mmdet.models'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsResNet',
        depth=50,
        layout='steps',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBN', requires_grad=False),
        norm_eval=False,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-resnet50_8xb32_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-resnet50_8xb32_in1k/epoch_100.pth',
            pretrain_config='configs/imagenet/steps-resnet50_8xb32_in1k.py')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]))
