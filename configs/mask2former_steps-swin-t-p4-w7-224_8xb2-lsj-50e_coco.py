# Mask2Former (instance segmentation), Steps-Swin-T, COCO, LSJ 50 epochs: the stock
# mmdet Swin-T recipe (AdamW 1e-4, wd 0.05, backbone lr x0.1, no weight decay on
# norms, position tables and queries, grad clip 0.01, drop path 0.3, 1024x1024
# large-scale jitter), with only the backbone swapped.
_base_ = 'mmdet::mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py'

custom_imports = dict(imports=['steps_mm'], allow_failed_imports=False)
# atomic checkpoint writes, resume past a truncated checkpoint (docs/runtime.md)
runner_type = 'steps_mm.CrashSafeRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StepsSwinTransformer',
        arch='tiny',
        layout='steps',
        window_size=7,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        gap_before_final_norm=False,
        # ImageNet-1K weights written by `mim train mmpretrain configs/imagenet/steps-swin-tiny_16xb64_in1k.py`;
        # from scratch instead: --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/steps-swin-tiny_16xb64_in1k/epoch_300.pth',
            pretrain_config='configs/imagenet/steps-swin-tiny_16xb64_in1k.py')),
    panoptic_head=dict(in_channels=[96, 192, 384, 768]))

# The stock recipe exempts the norms of every block from weight decay by name,
# for Swin-T's 2, 2, 6, 2 blocks; Steps-Swin-T has 2, 2, 12, 10 (its twin's
# blocks are a subset of these names, so both get the same rule).
steps_depths = [2, 2, 12, 10]
custom_keys = {
    f'backbone.stages.{stage_id}.blocks.{block_id}.norm': dict(lr_mult=0.1, decay_mult=0.0)
    for stage_id, num_blocks in enumerate(steps_depths)
    for block_id in range(num_blocks)
}
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=custom_keys))
