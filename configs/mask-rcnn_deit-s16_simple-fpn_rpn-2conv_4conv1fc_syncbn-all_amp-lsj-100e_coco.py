# The residual baseline of
# mask-rcnn_steps-deit-s16_simple-fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py:
# layout='sequential' is mmpretrain's DeiT-S (12 blocks), so mmpretrain's ImageNet
# checkpoint loads by name (its 14x14 position embedding resized to the 64x64 grid
# on loading).
_base_ = './mask-rcnn_steps-deit-s16_simple-fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py'

checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/deit/deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth'  # noqa
model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/deit-small_4xb256_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/deit-small_4xb256_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            checkpoint=checkpoint_file, prefix='backbone.',
            pretrain_config='configs/imagenet/deit-small_4xb256_in1k.py')))
