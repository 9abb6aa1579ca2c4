# UperNet + MultiLevelNeck, Steps-DeiT-S, ADE20K 512x512, 160k iterations: the
# stock mmseg DeiT-S recipe (AdamW 6e-5, wd 0.01, no decay on position embedding,
# class token and norms, linear warm-up + poly, drop path 0.1, no final norm,
# four block outputs resized to strides 4/8/16/32 by the neck), with only the
# backbone swapped.
_base_ = 'mmseg::vit/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    pretrained=None,  # the stock model-level key; the backbone has init_cfg
    backbone=dict(
        _delete_=True,
        type='StepsViT',
        arch='deit-small',
        layout='steps',
        img_size=(512, 512),
        # after blocks 6, 12, 18, 24 of the 24 (the stock (2, 5, 8, 11) of 12):
        # an output inside a narrow step carries the not yet processed channels
        out_indices=(5, 11, 17, 23),
        drop_path_rate=0.1,
        final_norm=False,
        out_type='featmap',
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-deit-small_4xb256_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-deit-small_4xb256_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-deit-small_4xb256_in1k.py')),
    neck=dict(in_channels=[384, 384, 384, 384], out_channels=384),
    decode_head=dict(in_channels=[384, 384, 384, 384]),
    auxiliary_head=dict(in_channels=384))
