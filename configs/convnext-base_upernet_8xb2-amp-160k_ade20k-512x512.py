# The residual baseline of steps-convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py:
# layout='sequential' is mmpretrain's ConvNeXt-b, loading the stock ImageNet weights.
_base_ = './steps-convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        layout='sequential',
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint={{_base_.checkpoint_file}},
            prefix='backbone.')))
