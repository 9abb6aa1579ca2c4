# The residual baseline of mask2former_steps-r50_8xb2-160k_ade20k-512x512.py:
# layout='sequential' is mmseg's ResNet-50 (same stem, blocks and outputs). It
# loads the stock recipe's ImageNet weights (torchvision://resnet50, here by URL so
# that torchvision is not needed) through steps_mm's torchvision key map.
_base_ = './mask2former_steps-r50_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        layout='sequential',
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/resnet50_8xb32_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/resnet50_8xb32_in1k/epoch_100.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            pretrain_config='configs/imagenet/resnet50_8xb32_in1k.py',
            checkpoint='https://download.pytorch.org/models/resnet50-0676ba61.pth')))
