# The residual baseline of vit_steps-deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py:
# layout='sequential' is mmpretrain's DeiT-S (12 blocks, outputs after blocks
# 3, 6, 9, 12 as the stock recipe), so mmpretrain's ImageNet checkpoint loads
# by name (its 14x14 position embedding is resized to the 32x32 grid on loading).
_base_ = './vit_steps-deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py'

checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/deit/deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth'  # noqa
model = dict(
    backbone=dict(
        layout='sequential',
        out_indices=(2, 5, 8, 11),
        # the stock ImageNet weights; like for like with the Steps twin, this
        # baseline's own pretraining (configs/imagenet/deit-small_4xb256_in1k.py):
        # --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/deit-small_4xb256_in1k/epoch_300.pth
        init_cfg=dict(
            _delete_=True, type='Pretrained',
            checkpoint=checkpoint_file, prefix='backbone.',
            pretrain_config='configs/imagenet/deit-small_4xb256_in1k.py')))
