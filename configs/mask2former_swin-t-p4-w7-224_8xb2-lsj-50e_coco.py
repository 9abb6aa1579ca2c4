# The residual baseline of mask2former_steps-swin-t-p4-w7-224_8xb2-lsj-50e_coco.py:
# layout='sequential' is mmdet's Swin-T with its parameter names. The stock recipe
# converts the official checkpoint on loading; this one loads the same ImageNet-1k
# weights already converted to mmdet/mmseg names by OpenMMLab (the checkpoint of
# mmseg's Swin-T recipes), as mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py.
_base_ = './mask2former_steps-swin-t-p4-w7-224_8xb2-lsj-50e_coco.py'

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
