# Mask R-CNN + FPN, Steps-Swin-T, COCO, 3x with multi-scale crop.
# The stock mmdet Swin-T recipe (AdamW 1e-4, wd 0.05, no decay on norms and
# relative position bias tables, drop path 0.2), with only the backbone swapped.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsSwinTransformer',
        arch='tiny',
        layout='steps',
        window_size=7,
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.2,
        gap_before_final_norm=False,
        # No ImageNet weights of Steps-Swin are published: start from
        # scratch, or set dict(type='Pretrained', checkpoint=..., prefix='backbone.').
        init_cfg=None),
    neck=dict(in_channels=[96, 192, 384, 768]))
