# The residual baseline of steps_convnext_upernet.py: layout='sequential' is
# mmpretrain's ConvNeXt-T, so the stock ImageNet checkpoint loads unchanged.
_base_ = './steps_convnext_upernet.py'

model = dict(
    backbone=dict(
        layout='sequential',
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint={{_base_.checkpoint_file}},
            prefix='backbone.')))
