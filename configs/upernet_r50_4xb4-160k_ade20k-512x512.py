# The residual baseline of upernet_steps-r50_4xb4-160k_ade20k-512x512.py:
# layout='sequential' is mmdet's ResNet-50 (V1b: plain 7x7 stem, not the stock
# recipe's V1c), loading torchvision's ImageNet weights (by URL, so that torchvision
# is not needed) through steps_mm's torchvision key map.
_base_ = './upernet_steps-r50_4xb4-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        layout='sequential',
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            checkpoint='https://download.pytorch.org/models/resnet50-0676ba61.pth')))
