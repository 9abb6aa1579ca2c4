# The residual baseline of dino-4scale_steps-swin-t-p4-w7_8xb2-12e_coco.py:
# layout='sequential' is mmdet's Swin-T with its parameter names; it loads the
# ImageNet-1k Swin-T weights converted to mmdet/mmseg names by OpenMMLab (the
# checkpoint of mmseg's Swin-T recipes), as mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py.
_base_ = './dino-4scale_steps-swin-t-p4-w7_8xb2-12e_coco.py'

checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth'  # noqa

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/swin-tiny_16xb64_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/swin-tiny_16xb64_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint=checkpoint_file,
            pretrain_config='configs/imagenet/swin-tiny_16xb64_in1k.py')))
