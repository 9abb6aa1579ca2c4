"""The fast lane (``pytest -m "not slow"``) runs a sample of the per-config
parametrizations, one case per backbone family; CI runs every case."""
import os.path as osp

import pytest

#: one shipped config per family and task
FAST_CONFIGS = {
    'steps_convnext_maskrcnn.py', 'steps_convnext_upernet.py',
    'mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py', 'upernet_steps-r50_4xb4-160k_ade20k-512x512.py',
    'vit_steps-deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py',
    'steps-convnext-tiny_32xb128_in1k.py', 'steps-swin-tiny_16xb64_in1k.py',
    'steps-resnet18_8xb32_in1k.py', 'steps-deit-tiny_4xb256_in1k.py',
    # one per head beyond Mask R-CNN and UperNet
    'cascade-mask-rcnn_steps-convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
    'dino-4scale_steps-r50_8xb2-12e_coco.py', 'mask2former_steps-r50_8xb2-160k_ade20k-512x512.py',
    'mask-rcnn_steps-deit-s16_simple-fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py',
}


def sampled(values, fast=lambda value: osp.basename(str(value)) in FAST_CONFIGS,
            ids=None):
    """``values`` as pytest params, those for which ``fast(value)`` is false
    marked ``slow``."""
    ids = ids or [None] * len(values)
    return [pytest.param(v, id=i, marks=() if fast(v) else pytest.mark.slow)
            for v, i in zip(values, ids)]
