# Mask R-CNN + FPN, Steps-ConvNeXt-S, COCO 3x multi-scale crop. mmdet ships no
# ConvNeXt-S Mask R-CNN: the ConvNeXt-T recipe with the ConvNeXt-S settings of
# mmdet's Cascade Mask R-CNN ConvNeXt-S recipe (drop path 0.6, layer-wise lr
# decay 0.7 over 12 layers).
_base_ = './steps_convnext_maskrcnn.py'

checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext/downstream/convnext-small_3rdparty_32xb128-noema_in1k_20220301-303e75e3.pth'  # noqa

model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.6,
        init_cfg=dict(
            checkpoint='work_dirs/steps-convnext-small_32xb128_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-convnext-small_32xb128_in1k.py')))
optim_wrapper = dict(paramwise_cfg={
    'decay_rate': 0.7,
    'decay_type': 'layer_wise',
    'num_layers': 12
})
