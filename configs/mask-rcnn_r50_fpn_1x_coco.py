# The residual baseline of mask-rcnn_steps-r50_fpn_1x_coco.py: layout='sequential'
# is mmdet's ResNet-50 (same stem, blocks and outputs). Its parameter names differ
# from the torchvision://resnet50 checkpoint of the stock recipe (mmdet's
# layer{i}.0 is first_blocks.{i-1}, layer{i}.{k} is stages.{i-1}.{k-1}), so that
# checkpoint does not load by name: init_cfg stays None (from scratch) until it
# is mapped.
_base_ = './mask-rcnn_steps-r50_fpn_1x_coco.py'

model = dict(backbone=dict(layout='sequential'))
