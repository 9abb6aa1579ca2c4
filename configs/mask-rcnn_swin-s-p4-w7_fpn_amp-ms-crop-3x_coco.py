# The residual baseline of mask-rcnn_steps-swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py:
# layout='sequential' is mmdet's Swin-S with its parameter names. The stock
# recipe converts the official checkpoint on loading; this one loads the same
# ImageNet-1k weights already converted to mmdet/mmseg names by OpenMMLab
# (the checkpoint of mmseg's Swin-S UperNet recipe).
_base_ = './mask-rcnn_steps-swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py'

checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/swin-small_16xb64_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/swin-small_16xb64_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint=checkpoint_file,
            pretrain_config='configs/imagenet/swin-small_16xb64_in1k.py')))
