# The residual baseline of mask-rcnn_steps-convnext-s-p4-w7_fpn_amp-ms-crop-3x_coco.py:
# layout='sequential' is mmpretrain's ConvNeXt-S, loading the stock ImageNet weights.
_base_ = './mask-rcnn_steps-convnext-s-p4-w7_fpn_amp-ms-crop-3x_coco.py'

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/convnext-small_32xb128_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/convnext-small_32xb128_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            checkpoint={{_base_.checkpoint_file}}, prefix='backbone.',
            pretrain_config='configs/imagenet/convnext-small_32xb128_in1k.py')))
