# The residual baseline of
# cascade-mask-rcnn_steps-convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py:
# layout='sequential' is mmpretrain's ConvNeXt-T, so the stock recipe's ImageNet
# checkpoint loads unchanged.
_base_ = './cascade-mask-rcnn_steps-convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'

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
