# The residual baseline of steps-convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py:
# layout='sequential' is mmpretrain's ConvNeXt-b, loading the stock ImageNet weights.
_base_ = './steps-convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/convnext-base_32xb128_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/convnext-base_32xb128_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            checkpoint={{_base_.checkpoint_file}}, prefix='backbone.',
            pretrain_config='configs/imagenet/convnext-base_32xb128_in1k.py')))
