"""Frozen-backbone probes: how much of each dense task each stage of a pretrained
backbone holds before any fine-tuning, for both twins of a comparison.

Each backbone is built as its Mask R-CNN config builds it, with that config's
``init_cfg`` (the chain's pretraining checkpoint), frozen in eval mode. On each
stage's feature map of the built-in data:

- **box probe**: every ground-truth box of the COCO-format set, and as many
  background boxes (the same sizes, IoU < 0.3 with every object), RoIAlign-pooled
  (7 x 7, averaged, as the RoI heads read the maps); a linear classifier over
  background and the three shapes, trained on the training boxes, its accuracy
  on the validation boxes;
- **pixel probe**: a linear per-pixel classifier (background and the three
  shapes, the ADE-format labels taken at the map's resolution), trained on the
  training images' pixels, its mIoU on the validation pixels.

Both twins get the same boxes, pixels and linear-layer training (seeded), so a
difference is the backbones'.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

BOX_POOL = 7
BACKGROUND_IOU = 0.3


def build_backbone(config: str) -> Tuple[torch.nn.Module, Dict]:
    """The backbone of a det config, initialised from its ``init_cfg`` and
    frozen, with the config's input normalisation."""
    from mmengine.config import Config
    import steps_mm  # noqa: F401  registers the backbones
    from steps_mm.registry import MODELS
    cfg = Config.fromfile(config)
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    backbone.eval().requires_grad_(False)
    pre = cfg.model.data_preprocessor
    return backbone, dict(mean=pre.mean, std=pre.std, rgb=pre.get('bgr_to_rgb', False))


def load_images(paths: Sequence[str], norm: Dict) -> torch.Tensor:
    from PIL import Image
    images = np.stack([np.asarray(Image.open(p).convert('RGB'), dtype=np.float32)
                       for p in paths])
    if not norm['rgb']:  # the config normalises BGR images
        images = images[..., ::-1]
    images = (images - np.array(norm['mean'])) / np.array(norm['std'])
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()


@torch.no_grad()
def stage_maps(backbone, images: torch.Tensor, batch: int = 16) -> List[torch.Tensor]:
    outs = [backbone(images[i:i + batch]) for i in range(0, len(images), batch)]
    return [torch.cat(maps) for maps in zip(*outs)]


def _iou(box, boxes):
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def probe_boxes(ann_file: str, seed: int = 0) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """(image files, rois ``[image, x1, y1, x2, y2]``, labels: 0 background,
    1.. the categories): every object and one background box per object."""
    with open(ann_file) as f:
        coco = json.load(f)
    rng = np.random.default_rng(seed)
    images = sorted(coco['images'], key=lambda i: i['id'])
    index = {im['id']: k for k, im in enumerate(images)}
    rois, labels = [], []
    for im in images:
        objects = [a for a in coco['annotations'] if a['image_id'] == im['id']]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in
                          (a['bbox'] for a in objects)], dtype=np.float32).reshape(-1, 4)
        for a, box in zip(objects, boxes):
            rois.append([index[im['id']], *box])
            labels.append(a['category_id'])
            w, h = box[2] - box[0], box[3] - box[1]
            for _ in range(100):  # a background box of the same size
                x, y = rng.uniform(0, im['width'] - w), rng.uniform(0, im['height'] - h)
                candidate = np.array([x, y, x + w, y + h], dtype=np.float32)
                if _iou(candidate, boxes).max() < BACKGROUND_IOU:
                    rois.append([index[im['id']], *candidate])
                    labels.append(0)
                    break
    folder = osp.join(osp.dirname(osp.dirname(ann_file)),
                      osp.basename(ann_file).split('_')[1].split('.')[0])
    return ([osp.join(folder, im['file_name']) for im in images],
            np.array(rois, dtype=np.float32), np.array(labels))


def pooled(maps: List[torch.Tensor], rois: np.ndarray, image_size: int) -> List[torch.Tensor]:
    """Each stage's RoIAlign-pooled, averaged feature of every box."""
    from mmcv.ops import roi_align
    boxes = torch.from_numpy(rois)
    return [roi_align(m, boxes, (BOX_POOL, BOX_POOL), m.shape[-1] / image_size, 0,
                      'avg', True).mean((2, 3)) for m in maps]


def pixel_labels(files: Sequence[str]) -> torch.Tensor:
    """ADE-format labels as classes 0.. (background first), -1 ignored (0)."""
    from PIL import Image
    return torch.from_numpy(np.stack([np.asarray(Image.open(f)) for f in files])
                            .astype(np.int64) - 1)


def at_resolution(labels: torch.Tensor, size: int) -> torch.Tensor:
    stride = labels.shape[-1] // size
    return labels[:, stride // 2::stride, stride // 2::stride]


def fit_linear(x: torch.Tensor, y: torch.Tensor, classes: int, steps: int = 300,
               seed: int = 0):
    """A linear classifier on standardised features, full batch (Adam)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], classes)
    optim = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=1e-4)
    z = (x - mean) / std
    with torch.enable_grad():
        for _ in range(steps):
            optim.zero_grad()
            torch.nn.functional.cross_entropy(layer(z), y, ignore_index=-1).backward()
            optim.step()
    return lambda v: layer((v - mean) / std).argmax(1)


def miou(pred: torch.Tensor, truth: torch.Tensor, classes: int) -> float:
    keep = truth >= 0
    pred, truth = pred[keep], truth[keep]
    ious = [((pred == c) & (truth == c)).sum().item() / u for c in range(classes)
            if (u := ((pred == c) | (truth == c)).sum().item())]
    return 100 * float(np.mean(ious))


def probe_backbone(config: str, data_dir: str) -> Dict[str, List[float]]:
    """``{'box': accuracy per stage, 'pixel': mIoU per stage}`` of the frozen
    backbone of the det config ``config`` on the built-in data in ``data_dir``."""
    backbone, norm = build_backbone(config)
    coco = osp.join(data_dir, 'coco', 'annotations')
    split = {}
    for name in ('train', 'val'):
        files, rois, labels = probe_boxes(osp.join(coco, f'instances_{name}2017.json'))
        images = load_images(files, norm)
        split[name] = (pooled(stage_maps(backbone, images), rois, images.shape[-1]),
                       torch.from_numpy(labels))
    classes = int(split['train'][1].max()) + 1
    box = []
    for stage in range(len(split['train'][0])):
        predict = fit_linear(split['train'][0][stage], split['train'][1], classes)
        box.append(100 * (predict(split['val'][0][stage]) == split['val'][1])
                   .float().mean().item())
    ade = osp.join(data_dir, 'ade')
    maps, labels = {}, {}
    for name, folder in (('train', 'training'), ('val', 'validation')):
        stems = sorted(osp.splitext(f)[0] for f in
                       os.listdir(osp.join(ade, 'images', folder)))
        maps[name] = stage_maps(backbone, load_images(
            [osp.join(ade, 'images', folder, s + '.jpg') for s in stems], norm))
        labels[name] = pixel_labels(
            [osp.join(ade, 'annotations', folder, s + '.png') for s in stems])
    pixel = []
    classes = int(labels['train'].max()) + 1
    for stage in range(len(maps['train'])):
        flat = {}
        for name in ('train', 'val'):
            m = maps[name][stage]
            flat[name] = (m.permute(0, 2, 3, 1).reshape(-1, m.shape[1]),
                          at_resolution(labels[name], m.shape[-1]).reshape(-1))
        predict = fit_linear(*flat['train'], classes)
        pixel.append(miou(predict(flat['val'][0]), flat['val'][1], classes))
    return dict(box=box, pixel=pixel)


def probe_comparison(name: str, work_dir: str, seeds: Sequence[int],
                     echo=print) -> Dict:
    """Both twins' frozen probes for every seed of an earlier ``--compare`` run
    in ``work_dir`` (its det configs, which load each seed's pretraining)."""
    import glob
    from ..demo.chain import PAIRS
    from .side_by_side import chain_dir
    if name not in PAIRS:
        raise ValueError(f'no comparison {name!r}; choose one of {sorted(PAIRS)}')
    data = dict(comparison=name, steps=PAIRS[name][0].name, twin=PAIRS[name][1].name,
                seeds=list(seeds), per_seed={})
    for seed in seeds:
        for model in PAIRS[name]:
            configs = glob.glob(osp.join(chain_dir(work_dir, name, model, seed), 'det',
                                         '*.py'))
            if len(configs) != 1:
                raise FileNotFoundError(
                    f'no Mask R-CNN config of {model.name} (seed {seed}) under '
                    f'{chain_dir(work_dir, name, model, seed)}/det: run --compare --model '
                    f'{name} with these --seeds and --work-dir first')
            echo(f'[probes] {model.name}, seed {seed}')
            data['per_seed'].setdefault(str(seed), {})[model.name] = probe_backbone(
                configs[0], osp.join(work_dir, 'data'))
    return data


def write_probes(data: Dict, out_dir: str, stem: str) -> Dict[str, str]:
    """``<stem>_probes.json`` and ``.png``: each probe per stage, both twins,
    mean ± std over seeds."""
    from ..report import new_figure, save_figure, write_json
    paths = dict(json=write_json(out_dir, f'{stem}_probes.json', data))
    fig, axes = new_figure(ncols=2, width=4.2, height=3.4)
    titles = dict(box='box probe (RoIAlign, linear): accuracy',
                  pixel='pixel probe (linear): mIoU')
    for ax, probe in zip(axes, ('box', 'pixel')):
        for offset, model in enumerate((data['steps'], data['twin'])):
            values = np.array([row[model][probe] for row in data['per_seed'].values()])
            stages = np.arange(values.shape[1]) + 1 + 0.05 * (offset - 0.5)
            ax.errorbar(stages, values.mean(0), yerr=values.std(0), marker='os'[offset],
                        capsize=3, label=model)
        ax.set(title=titles[probe], xlabel='stage (frozen pretrained backbone)',
               xticks=range(1, values.shape[1] + 1))
        ax.grid(alpha=.3)
    axes[0].legend(fontsize=8)
    paths['png'] = save_figure(fig, out_dir, f'{stem}_probes.png')
    return paths
