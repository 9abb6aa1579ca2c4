# The residual baseline of mask-rcnn_steps-r50_fpn_1x_coco.py: layout='sequential'
# is mmdet's ResNet-50 (same stem, blocks and outputs). It loads the stock recipe's
# ImageNet weights (torchvision://resnet50, here by URL so that torchvision is not
# needed) through steps_mm's torchvision key map.
_base_ = './mask-rcnn_steps-r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        layout='sequential',
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            checkpoint='https://download.pytorch.org/models/resnet50-0676ba61.pth')))
