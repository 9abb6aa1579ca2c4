"""Device-hours of a training run, from the recipe's schedule and the measured
throughput of its full training step (``model.train_step``: data preprocessing
with the recipe's batch augments, forward, backward, optimizer step) on synthetic
batches: ImageNet-1K pretraining at 224x224, and the det/seg recipes at their
training size (COCO: the fixed size of an LSJ recipe, else 1333x800, the largest
image of the multi-scale recipes; ADE20K: the crop), with synthetic boxes, masks
or label maps."""
import os.path as osp
import re
from typing import NamedTuple, Optional, Tuple

import torch

from .configs import build_model

IMAGENET_TRAIN_IMAGES = 1_281_167
#: COCO train2017: all images, and those with annotations (``filter_empty_gt``)
COCO_TRAIN_IMAGES, COCO_ANNOTATED_IMAGES = 118_287, 117_266
#: (H, W) a COCO recipe without a fixed training size is timed at
COCO_TRAIN_SHAPE = (800, 1333)
#: synthetic objects per training image (COCO averages 7.3)
OBJECTS = 8


class TrainingRun(NamedTuple):
    model: torch.nn.Module
    optim_wrapper: object
    data: dict  # one synthetic batch, as a dataloader gives it
    images: int  # training images the recipe's schedule processes
    batch: int
    schedule: str  # the schedule, in words

    def step(self):
        """One full training step of the recipe."""
        return self.model.train_step(self.data, self.optim_wrapper)


def training_run(config: str, device: str = 'cpu', amp: bool = False,
                 batch: Optional[int] = None,
                 shape: Optional[Tuple[int, int]] = None) -> TrainingRun:
    """The model (built as the Runner builds it, randomly initialised), optimizer
    and a synthetic batch of a config; ``batch``: images per device (default: the
    recipe's); ``shape``: (H, W) of the images instead of the recipe's size."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from ..registry import codebase_of
    scope = codebase_of(config)
    if scope == 'mmpretrain':
        import steps_mm.pretraining  # noqa: F401  (before mmpretrain: docs/runtime.md)
    cfg = Config.fromfile(config)
    model = build_model(cfg, pretrained=scope == 'mmpretrain').to(device)
    model.init_weights()
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = batch or cfg.train_dataloader.batch_size
    shape = tuple(shape or train_shape(cfg, scope))
    make = {'mmpretrain': _classification_sample, 'mmdet': _detection_sample,
            'mmseg': _segmentation_sample}[scope]
    gen = torch.Generator().manual_seed(0)
    data = dict(inputs=[torch.randint(0, 256, (3, *shape), dtype=torch.uint8,
                                      generator=gen) for _ in range(batch)],
                data_samples=[make(cfg, shape, i, gen) for i in range(batch)])
    images, schedule = schedule_images(cfg, scope)
    return TrainingRun(model, optim_wrapper, data, images, batch, schedule)


def train_shape(cfg, scope: str) -> Tuple[int, int]:
    """(H, W) a recipe trains on: 224x224 (ImageNet), the crop (ADE20K), the
    padded size of an LSJ recipe or else ``COCO_TRAIN_SHAPE`` (COCO)."""
    if scope == 'mmpretrain':
        return 224, 224
    preprocessor = cfg.model.get('data_preprocessor') or {}
    if scope == 'mmseg':
        return tuple(preprocessor['size'])
    sizes = [a['size'] for a in preprocessor.get('batch_augments') or [] if 'size' in a]
    return tuple(sizes[0]) if sizes else COCO_TRAIN_SHAPE


def _classification_sample(cfg, shape, i, gen):
    from mmpretrain.structures import DataSample
    return DataSample().set_gt_label(i % cfg.model.head.num_classes)


def _detection_sample(cfg, shape, i, gen):
    import numpy as np
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = shape
    corner = torch.rand(OBJECTS, 2, generator=gen) * torch.tensor([w * .7, h * .7])
    size = (torch.rand(OBJECTS, 2, generator=gen) * .25 + .05) * torch.tensor([w, h])
    boxes = torch.cat([corner, corner + size], 1)
    masks = np.zeros((OBJECTS, h, w), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        masks[k, y0:y1, x0:x1] = 1
    sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                         scale_factor=(1., 1.), flip=False))
    sample.gt_instances = InstanceData(
        bboxes=boxes, labels=torch.randint(0, 80, (OBJECTS, ), generator=gen),
        masks=BitmapMasks(masks, h, w))
    sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                            labels=torch.zeros(0, dtype=torch.long))
    return sample


def _segmentation_sample(cfg, shape, i, gen):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                         pad_shape=shape))
    classes = cfg.model.decode_head.num_classes
    sample.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, *shape),
                                                     generator=gen))
    return sample


def schedule_images(cfg, scope: str) -> Tuple[int, str]:
    """Training images the recipe's schedule processes, and the schedule in words:
    epochs of ImageNet-1K or COCO train2017 (its annotated images unless the
    recipe keeps empty ones; a ``RepeatDataset`` multiplies the epochs), or
    iterations of the recipe's global batch (``auto_scale_lr.base_batch_size``,
    else the config name's ``<GPUs>xb<batch>``, else 8 GPUs' worth)."""
    loop = cfg.train_cfg
    if 'max_iters' in loop:
        batch = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
        found = re.search(r'(\d+)xb(\d+)', osp.basename(cfg.filename))
        if batch is None and found:
            batch = int(found[1]) * int(found[2])
        elif batch is None:  # OpenMMLab's default: 8 GPUs
            batch = 8 * cfg.train_dataloader.batch_size
        return loop.max_iters * batch, f'{loop.max_iters:,} iterations x {batch}'
    if scope == 'mmpretrain':
        return loop.max_epochs * IMAGENET_TRAIN_IMAGES, f'{loop.max_epochs} epochs'
    dataset, epochs = cfg.train_dataloader.dataset, loop.max_epochs
    while 'dataset' in dataset:  # RepeatDataset
        epochs *= dataset.get('times', 1)
        dataset = dataset.dataset
    keep_empty = not (dataset.get('filter_cfg') or {}).get('filter_empty_gt', False)
    images = COCO_TRAIN_IMAGES if keep_empty else COCO_ANNOTATED_IMAGES
    return epochs * images, f'{epochs} epochs of {images:,}'


def device_hours(images: int, images_per_second: float) -> float:
    """Hours one device needs to train on ``images`` images."""
    return images / images_per_second / 3600
