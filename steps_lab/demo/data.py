"""A small built-in dataset: shapes pasted on real photographs, with exact masks,
written in COCO instance format and in ADE20K format, and a classification set of
the same kind in ImageNet's folder layout (one object per image, labelled by its
shape) for pretraining.

Backgrounds are the photographs that ship inside scikit-image (no download). Each
object is a circle, square or triangle filled with a texture cut from another
photograph and tinted with its class colour, so a model can learn it in a few
hundred iterations on a CPU while the task stays a real detection/segmentation task.
"""
import glob
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('circle', 'square', 'triangle')
CLASS_COLOURS = ((220, 40, 40), (40, 200, 40), (40, 70, 230))
#: semantic classes; the ADE20K files store ``index + 1`` (0 = ignore)
SEG_CLASSES = ('background',) + CLASSES
SEG_PALETTE = [[0, 0, 0]] + [list(c) for c in CLASS_COLOURS]
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera', 'coins',
          'immunohistochemistry', 'hubble_deep_field', 'brick', 'grass', 'gravel')


def load_photos() -> List[np.ndarray]:
    """The RGB photographs bundled with scikit-image."""
    from skimage import data
    photos = []
    for name in PHOTOS:
        img = np.asarray(getattr(data, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return photos


def _random_crop(rng, photo: np.ndarray, size: int) -> np.ndarray:
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[y:y + side, x:x + side])
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


def _shape_mask(rng, label: int, size: int, box: Tuple[int, int, int, int]):
    x0, y0, x1, y1 = box
    canvas = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if CLASSES[label] == 'circle':
        draw.ellipse(box, fill=1)
    elif CLASSES[label] == 'square':
        draw.rectangle(box, fill=1)
    else:
        apex = int(rng.integers(x0, x1 + 1))
        draw.polygon([(apex, y0), (x0, y1), (x1, y1)], fill=1)
    return np.asarray(canvas, dtype=bool)


def make_scene(rng, photos: List[np.ndarray], size: int, max_objects: int = 3,
               sides: Tuple[float, float] = (0.2, 0.5)):
    """One image, its instances ``(label, mask)`` (visible part) and its label map;
    object sides are drawn from ``sides`` (fractions of ``size``)."""
    img = _random_crop(rng, photos[rng.integers(len(photos))], size).astype(np.float32)
    instances = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(len(CLASSES)))
        side = int(rng.integers(int(size * sides[0]), int(size * sides[1])))
        x0, y0 = (int(v) for v in rng.integers(0, size - side, 2))
        mask = _shape_mask(rng, label, size, (x0, y0, x0 + side - 1, y0 + side - 1))
        texture = _random_crop(rng, photos[rng.integers(len(photos))], size)
        tint = np.asarray(CLASS_COLOURS[label], np.float32)
        fill = 0.35 * texture.mean(2, keepdims=True) + 0.65 * tint
        img[mask] = fill[mask]
        instances.append([label, mask])
    for later in range(len(instances)):  # later objects occlude earlier ones
        for earlier in range(later):
            instances[earlier][1] = instances[earlier][1] & ~instances[later][1]
    instances = [(lab, m) for lab, m in instances if m.sum() >= 16]
    seg = np.ones((size, size), np.uint8)  # 1 = background (0 is ignore in ADE)
    for label, mask in instances:
        seg[mask] = label + 2
    return img.clip(0, 255).astype(np.uint8), instances, seg


def _mask_to_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _drop_stamps(root: str):
    """Remove the stamps of earlier builds in ``root`` before another build
    replaces their files: a stamp left behind would make a later call with its
    sizes skip the build and use the other build's images."""
    for stamp in glob.glob(osp.join(root, '.built-*')):
        os.remove(stamp)


def data_stamp(root: str) -> Optional[str]:
    """The stamp of the build in ``root`` (``data_dir`` for the detection and
    segmentation sets, ``data_dir/imagenet`` for the classification set): its
    modification time is when those files were last written. None if unbuilt."""
    stamps = sorted(glob.glob(osp.join(root, '.built-*')), key=osp.getmtime)
    return stamps[-1] if stamps else None


def build_demo_datasets(root: str, num_train: int = 32, num_val: int = 8,
                        size: int = 160, seed: int = 0) -> Dict[str, str]:
    """Write ``root/coco`` (COCO instances, RLE masks) and ``root/ade``
    (ADE20K layout) from the same scenes; return their directories.

    Deterministic for a given seed; each split has its own random stream, so the
    validation images do not change with ``num_train``. An existing complete
    build is reused.
    """
    coco_dir, ade_dir = osp.join(root, 'coco'), osp.join(root, 'ade')
    stamp = osp.join(root, f'.built-v2-{num_train}-{num_val}-{size}-{seed}')
    if osp.exists(stamp):
        return dict(coco=coco_dir, ade=ade_dir)
    _drop_stamps(root)  # the build below replaces the one they describe
    photos = load_photos()
    for index, (split, count) in enumerate((('train', num_train), ('val', num_val))):
        rng = np.random.default_rng([seed, index])
        ade_split = 'training' if split == 'train' else 'validation'
        for sub in (f'coco/{split}2017', f'ade/images/{ade_split}',
                    f'ade/annotations/{ade_split}'):
            # a build of another size leaves no stray files (mmseg lists the folder)
            shutil.rmtree(osp.join(root, sub), ignore_errors=True)
            os.makedirs(osp.join(root, sub))
        os.makedirs(osp.join(root, 'coco', 'annotations'), exist_ok=True)
        images, annotations = [], []
        for idx in range(count):
            img, instances, seg = make_scene(rng, photos, size)
            name = f'{split}_{idx:04d}'
            Image.fromarray(img).save(osp.join(coco_dir, f'{split}2017', name + '.jpg'),
                                      quality=95)
            Image.fromarray(img).save(
                osp.join(ade_dir, 'images', ade_split, name + '.jpg'), quality=95)
            Image.fromarray(seg).save(
                osp.join(ade_dir, 'annotations', ade_split, name + '.png'))
            images.append(dict(id=idx, file_name=name + '.jpg', height=size, width=size))
            for label, mask in instances:
                ys, xs = np.nonzero(mask)
                x0, y0 = int(xs.min()), int(ys.min())
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=idx, category_id=label + 1,
                    bbox=[x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
                    area=int(mask.sum()), iscrowd=0,
                    segmentation=_mask_to_rle(mask)))
        categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
        with open(osp.join(coco_dir, 'annotations', f'instances_{split}2017.json'),
                  'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)
    open(stamp, 'w').close()
    return dict(coco=coco_dir, ade=ade_dir)


def build_classification_dataset(root: str, num_train: int = 64, num_val: int = 16,
                                 size: int = 112, seed: int = 1) -> str:
    """Write ``root/imagenet/{train,val}/<class>/*.jpg`` (ImageNet's folder layout,
    as mmpretrain's ``CustomDataset`` reads it): crops of the photographs with one
    large shape each, labelled by the shape. ``num_train``/``num_val`` images per class;
    the default seed differs from the detection set's, so no image is shared.

    Deterministic for a given seed; an existing complete build is reused.
    """
    out = osp.join(root, 'imagenet')
    stamp = osp.join(out, f'.built-v2-{num_train}-{num_val}-{size}-{seed}')
    if osp.exists(stamp):
        return out
    _drop_stamps(out)
    rng = np.random.default_rng(seed)
    photos = load_photos()
    for split, per_class in (('train', num_train), ('val', num_val)):
        # a build of other counts leaves no stray files (mmpretrain lists the folders)
        shutil.rmtree(osp.join(out, split), ignore_errors=True)
        counts = [0] * len(CLASSES)
        while min(counts) < per_class:
            # object-centric, as ImageNet: the shape spans 40-80% of the side
            img, instances, _ = make_scene(rng, photos, size, max_objects=1,
                                           sides=(0.4, 0.8))
            label = instances[0][0]
            if counts[label] == per_class:
                continue
            folder = osp.join(out, split, CLASSES[label])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(img).save(osp.join(folder, f'{counts[label]:04d}.jpg'),
                                      quality=95)
            counts[label] += 1
    open(stamp, 'w').close()
    return out
