# The residual baseline of
# steps-swin-small-patch4-window7_upernet_8xb2-160k_ade20k-512x512.py:
# layout='sequential' is mmseg's Swin-S with its parameter names, so the stock
# ImageNet-1k checkpoint (in mmseg's names) loads unchanged.
_base_ = './steps-swin-small-patch4-window7_upernet_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/swin-small_16xb64_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/swin-small_16xb64_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint={{_base_.checkpoint_file}},
            pretrain_config='configs/imagenet/swin-small_16xb64_in1k.py')))
