# The residual baseline of mask2former_steps-swin-t_8xb2-160k_ade20k-512x512.py:
# layout='sequential' is mmseg's Swin-T with its parameter names, loading the
# stock recipe's ImageNet-1k checkpoint (converted to these names by OpenMMLab).
_base_ = './mask2former_steps-swin-t_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/swin-tiny_16xb64_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/swin-tiny_16xb64_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint={{_base_.pretrained}},
            pretrain_config='configs/imagenet/swin-tiny_16xb64_in1k.py')))
