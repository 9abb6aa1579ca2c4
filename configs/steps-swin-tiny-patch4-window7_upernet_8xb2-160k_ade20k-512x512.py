# UperNet, Steps-Swin-T, ADE20K 512x512, 160k iterations: the stock mmseg
# Swin-T recipe (AdamW 6e-5, wd 0.01, no decay on norms and relative position
# bias tables, drop path 0.3, poly schedule), with only the backbone swapped.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'  # noqa

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
        drop_path_rate=0.3,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-swin-tiny_16xb64_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-swin-tiny_16xb64_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-swin-tiny_16xb64_in1k.py')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
