"""Override files that point a shipped config at the built-in dataset.

``write_demo_config`` (det/seg) and ``write_pretrain_config`` (ImageNet) write a
config that inherits the shipped one (``_base_``) and changes only data, image
size, schedule and class count (and where the backbone's weights come from), so the
stock tools (``mim train``/``mim test``, ``tools/train.py``/``tools/test.py``) run
it as is.
"""
import os
import os.path as osp
from typing import Optional

from steps_mm.registry import codebase_of
from .data import CLASSES, CLASS_COLOURS, SEG_CLASSES, SEG_PALETTE

_DET = '''
data_root = {data_root!r}
metainfo = dict(classes={classes!r}, palette={palette!r})
img_scale = ({size}, {size})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True), batch_sampler=None,
    dataset=dict({train_dataset}data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train2017.json',
                 data_prefix=dict(img='train2017/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val2017.json',
                 data_prefix=dict(img='val2017/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
# a few hundred iterations from scratch: the recipe's drop path (0.3-0.4) is for
# full schedules and only slows such a short run down
model = dict(
    backbone=dict(drop_path_rate={drop_path_rate}{backbone_init}),
{heads})
'''

_SEG = '''
data_root = {data_root!r}
metainfo = dict(classes={seg_classes!r}, palette={seg_palette!r})
crop_size = ({size}, {size})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
_dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
                img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, data_prefix=dict(img_path='images/training',
                                            seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, data_prefix=dict(img_path='images/validation',
                                            seg_map_path='annotations/validation'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
data_preprocessor = dict(size=crop_size)
model = dict(
    backbone=dict(drop_path_rate={drop_path_rate}{backbone_init}),  # short runs: see the det note
    data_preprocessor=data_preprocessor,
    test_cfg=dict(_delete_=True, mode='whole'),
{heads})
'''

_SCHEDULE = '''
# no validation pass at the end of training: mim test evaluates the checkpoint
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={iters},
                 val_interval={iters}, val_begin={iters} + 1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
{optim_wrapper}
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end={warmup}),
    dict(type='CosineAnnealingLR', by_epoch=False, begin={warmup}, end={cosine_end},
         eta_min={lr} * 0.05),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval={log_interval}),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval={iters},
                    max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed={seed})
'''


_CLS = '''
data_root = {data_root!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale={size}, crop_ratio_range=(0.7, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale={size}, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size={size}),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))  # {num_classes} classes: no top-5
test_evaluator = val_evaluator
data_preprocessor = dict(num_classes={num_classes})
# a few epochs: the recipe's Mixup/CutMix, drop path and EMA (momentum 1e-4:
# the average would still be the initial weights) are for 300-epoch runs, and
# its lr for batch 4096 (1e-3 at batch 16 stalls a ConvNeXt here; 3e-4 learns);
# None, not dict(_delete_=True): a recipe without batch augments (ResNet's) would
# keep the _delete_ key as an argument
model = dict(backbone=dict(drop_path_rate=0.0{backbone_options}),
             head=dict(num_classes={num_classes}),
             train_cfg=None)
custom_hooks = []
# no validation pass at the end of training: mim test evaluates the checkpoint
train_cfg = dict(by_epoch=True, max_epochs={epochs}, val_interval={epochs},
                 val_begin={epochs} + 1)
{optim_wrapper}
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end={epochs},
         eta_min={lr} * 0.05, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval={epochs}))
randomness = dict(seed={seed})
'''


def _optim_wrapper(lr: float, optimizer: Optional[dict]) -> str:
    """The recipe's optimizer at ``lr``, or ``optimizer`` (a dict with its
    ``type``) in its place."""
    if not optimizer:
        return f'optim_wrapper = dict(optimizer=dict(lr={lr!r}))'
    options = ''.join(f', {k}={v!r}' for k, v in optimizer.items())
    return f'optim_wrapper = dict(optimizer=dict(_delete_=True, lr={lr!r}{options}))'


def write_pretrain_config(config: str, data_dir: str, out_file: str, epochs: int = 12,
                          size: int = 64, batch_size: int = 16, lr: float = 3e-4,
                          seed: int = 0, backbone_options: Optional[dict] = None,
                          optimizer: Optional[dict] = None,
                          load_from: Optional[str] = None) -> str:
    """Write ``out_file``: the ImageNet config ``config`` pointed at the built-in
    classification set (``imagenet/`` inside ``data_dir``) for ``epochs`` epochs
    (at least 2: one of warm-up, then a cosine schedule). ``backbone_options``
    override the recipe's backbone arguments (e.g. ConvNeXt's layer scale);
    ``optimizer`` (e.g. ``dict(type='AdamW', weight_decay=0.05)``) replaces the
    recipe's. ``load_from``: a classifier checkpoint the training starts from
    (its weights only, as ``mim train --cfg-options load_from=...``)."""
    if epochs < 2:
        raise ValueError(f'epochs must be >= 2 (1 warm-up + cosine), got {epochs}')
    from .data import CLASSES
    data_root = osp.join(osp.abspath(data_dir), 'imagenet') + '/'
    options = ''.join(f', {k}={v!r}' for k, v in (backbone_options or {}).items())
    body = _CLS.format(data_root=data_root, size=size, batch_size=batch_size,
                       backbone_options=options,
                       num_classes=len(CLASSES), epochs=epochs, lr=lr, seed=seed,
                       optim_wrapper=_optim_wrapper(lr, optimizer))
    if load_from:
        body += f'load_from = {osp.abspath(load_from)!r}\n'
    return _write(config, out_file, body)


def _write(config: str, out_file: str, body: str) -> str:
    text = (f'# Generated by steps_lab.demo: {osp.basename(config)} on the built-in '
            f'dataset.\n_base_ = {osp.abspath(config)!r}\n' + body)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with open(out_file, 'w') as f:
        f.write(text)
    return out_file


def _model_overrides(config: str, codebase: str, fields: dict) -> dict:
    """``heads`` (the model's keys that set the class count, as config text) and
    ``train_dataset`` for ``config``'s model and data, whichever detector or
    segmenter it is: the heads' class counts (every stage of a cascade, a
    Mask2Former's queries' class weights, which hold one entry more), two-stage
    detectors' RoI sampling and proposals, fixed-size batch padding (LSJ
    recipes) at the demo's size, and a training set wrapped (``RepeatDataset``)
    replaced by the plain one."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    model = cfg.model.to_dict()
    n = fields['num_classes'] if codebase == 'mmdet' else fields['num_seg_classes']
    heads = {}

    def classes(head: dict, key: str = 'num_classes') -> dict:
        """The override of ``head``'s class count."""
        override = {key: n}
        weight = head.get('loss_cls', {}).get('class_weight')
        if weight:  # one weight per class, and the last one for "no object"
            override['loss_cls'] = dict(class_weight=[1.0] * n + weight[-1:])
        return override

    roi = model.get('roi_head')
    if roi:
        # a cascade's stages are lists: each stage is written out whole
        heads['roi_head'] = {k: [dict(h, **classes(h)) for h in roi[k]]
                             if isinstance(roi[k], list) else classes(roi[k])
                             for k in ('bbox_head', 'mask_head') if k in roi}
        rcnn = model['train_cfg']['rcnn']
        # small images hold few objects: sample fewer RoIs (stock: 256 / 512)
        heads['train_cfg'] = dict(rpn=dict(sampler=dict(num=64)), rcnn=[
            dict(r, sampler=dict(r['sampler'], num=64)) for r in rcnn]
            if isinstance(rcnn, list) else dict(sampler=dict(num=64)))
        heads['test_cfg'] = dict(rpn=dict(nms_pre=fields['num_proposals'],
                                          max_per_img=fields['num_proposals']))
    if 'bbox_head' in model:  # DETR-like
        heads['bbox_head'] = classes(model['bbox_head'])
        if 'num_queries' in model:  # DINO takes its queries from the encoder's
            # tokens: 340 on a 128 px image, fewer than the stock 900
            heads['num_queries'] = min(model['num_queries'], 100)
            heads['test_cfg'] = dict(max_per_img=min(
                model.get('test_cfg', {}).get('max_per_img', 100), 100))
    if 'panoptic_head' in model:  # mmdet's MaskFormer / Mask2Former: things only
        heads['panoptic_head'] = dict(classes(model['panoptic_head'], 'num_things_classes'),
                                      num_stuff_classes=0)
        heads['panoptic_fusion_head'] = dict(num_things_classes=n, num_stuff_classes=0)
    for key in ('decode_head', 'auxiliary_head'):
        if isinstance(model.get(key), dict):
            heads[key] = classes(model[key])
    augments = (model.get('data_preprocessor') or {}).get('batch_augments') or []
    if any('size' in a for a in augments):
        heads['data_preprocessor'] = dict(batch_augments=[
            dict(a, size=(fields['size'], fields['size'])) if 'size' in a else a
            for a in augments])
    if codebase == 'mmseg':
        heads.pop('data_preprocessor', None)  # the seg template sets its own
    dataset = cfg.train_dataloader.dataset
    inner = dataset
    while 'dataset' in inner:
        inner = inner.dataset
    train_dataset = '' if inner is dataset else (
        f"_delete_=True, type={inner.type!r}, filter_cfg={inner.get('filter_cfg')!r},\n"
        '                 ')
    return dict(heads=''.join(f'    {k}={v!r},\n' for k, v in heads.items()),
                train_dataset=train_dataset)


def write_demo_config(config: str, data_dir: str, out_file: str, iters: int = 100,
                      size: int = 160, batch_size: int = 2, lr: float = 4e-4,
                      drop_path_rate: float = 0.1, seed: int = 0,
                      codebase: Optional[str] = None,
                      backbone_checkpoint: Optional[str] = None,
                      optimizer: Optional[dict] = None, num_proposals: int = 1000) -> str:
    """Write ``out_file``: ``config`` pointed at the built-in dataset ``data_dir``
    (``coco/`` or ``ade/`` inside it) and trained for ``iters`` iterations.

    ``backbone_checkpoint``: the backbone loads it (a pretraining run's checkpoint)
    instead of the file the shipped config names; ``'scratch'``: random init.
    ``optimizer`` (a dict with its ``type``) replaces the recipe's; ``num_proposals``:
    the RPN proposals per image at test time (the stock 1000 by default).
    """
    codebase = codebase or codebase_of(config)
    fields = dict(
        size=size, batch_size=batch_size, iters=iters, lr=lr, seed=seed,
        drop_path_rate=drop_path_rate, optim_wrapper=_optim_wrapper(lr, optimizer),
        num_proposals=num_proposals,
        warmup=max(1, min(20, iters // 5)), log_interval=max(1, min(10, iters // 5)),
        cosine_end=max(iters, 2),  # a scheduler needs begin < end, even for 1 iteration
        classes=CLASSES, palette=[list(c) for c in CLASS_COLOURS],
        num_classes=len(CLASSES), seg_classes=SEG_CLASSES, seg_palette=SEG_PALETTE,
        num_seg_classes=len(SEG_CLASSES))
    sub = 'coco' if codebase == 'mmdet' else 'ade'
    fields['data_root'] = osp.join(osp.abspath(data_dir), sub) + '/'
    fields['backbone_init'] = (
        '' if backbone_checkpoint is None else ', init_cfg=None'
        if backbone_checkpoint == 'scratch' else
        f',\n                  init_cfg=dict(checkpoint={osp.abspath(backbone_checkpoint)!r})')
    fields.update(_model_overrides(config, codebase, fields))
    body = (_DET if codebase == 'mmdet' else _SEG).format(**fields)
    return _write(config, out_file, body + _SCHEDULE.format(**fields))
