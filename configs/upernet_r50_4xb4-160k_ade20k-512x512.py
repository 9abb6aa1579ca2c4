# The residual baseline of upernet_steps-r50_4xb4-160k_ade20k-512x512.py:
# layout='sequential' is mmdet's ResNet-50 (V1b: plain 7x7 stem, not the stock
# recipe's V1c). Its parameter names differ from the torchvision://resnet50
# checkpoint (mmdet's layer{i}.0 is first_blocks.{i-1}, layer{i}.{k} is
# stages.{i-1}.{k-1}), so init_cfg stays None (from scratch) until it is mapped.
_base_ = './upernet_steps-r50_4xb4-160k_ade20k-512x512.py'

model = dict(backbone=dict(layout='sequential'))
