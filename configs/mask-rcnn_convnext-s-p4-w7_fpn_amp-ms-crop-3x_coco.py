# The residual baseline of mask-rcnn_steps-convnext-s-p4-w7_fpn_amp-ms-crop-3x_coco.py:
# layout='sequential' is mmpretrain's ConvNeXt-S, loading the stock ImageNet weights.
_base_ = './mask-rcnn_steps-convnext-s-p4-w7_fpn_amp-ms-crop-3x_coco.py'

model = dict(
    backbone=dict(
        layout='sequential',
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint={{_base_.checkpoint_file}},
            prefix='backbone.')))
