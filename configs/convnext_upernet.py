# The residual baseline of steps_convnext_upernet.py: layout='sequential' is
# mmpretrain's ConvNeXt-T, so the stock ImageNet checkpoint loads unchanged.
_base_ = './steps_convnext_upernet.py'

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/convnext-tiny_32xb128_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/convnext-tiny_32xb128_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            checkpoint={{_base_.checkpoint_file}}, prefix='backbone.',
            pretrain_config='configs/imagenet/convnext-tiny_32xb128_in1k.py')))
