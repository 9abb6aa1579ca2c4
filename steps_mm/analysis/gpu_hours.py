"""Device-hours of an ImageNet-1K pretraining run, from the recipe's schedule and
the measured throughput of its full training step (``model.train_step``: data
preprocessing with the recipe's Mixup/CutMix, forward, backward, optimizer step)
on synthetic 224x224 batches."""
from typing import NamedTuple

import torch

from .configs import build_model

IMAGENET_TRAIN_IMAGES = 1_281_167


class TrainingStep(NamedTuple):
    """What one full training step of a recipe needs, and the recipe's schedule."""

    model: torch.nn.Module
    optim_wrapper: object
    data: dict  # one synthetic batch, as a dataloader gives it
    epochs: int
    batch: int

    def step(self):
        """One full training step of the recipe."""
        return self.model.train_step(self.data, self.optim_wrapper)


def build_training_step(config: str, device: str = 'cpu', amp: bool = False,
                        batch: int = None) -> TrainingStep:
    """The model (built as the Runner builds it), optimizer and a synthetic batch
    of an ImageNet config; ``batch``: images per device (default: the recipe's)."""
    import steps_mm.pretraining  # noqa: F401  (before mmpretrain: see docs/runtime.md)
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(config)
    model = build_model(cfg).to(device)
    model.init_weights()
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = batch or cfg.train_dataloader.batch_size
    classes = cfg.model.head.num_classes
    data = dict(inputs=[torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8)
                        for _ in range(batch)],
                data_samples=[DataSample().set_gt_label(i % classes)
                              for i in range(batch)])
    return TrainingStep(model, optim_wrapper, data, cfg.train_cfg.max_epochs, batch)


def device_hours(epochs: int, images_per_second: float) -> float:
    """Hours one device needs for ``epochs`` of ImageNet-1K's training set."""
    return epochs * IMAGENET_TRAIN_IMAGES / images_per_second / 3600
