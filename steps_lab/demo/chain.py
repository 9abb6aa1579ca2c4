"""The demo's chain, the paper's at laptop scale: pretrain a backbone with
``mim train mmpretrain`` on the built-in ImageNet-format set, then fine-tune and
test its Mask R-CNN and UperNet from that checkpoint with ``mim train`` /
``mim test`` of mmdet and mmseg, each on a config that inherits the shipped one
(``write_pretrain_config`` / ``write_demo_config``).

One ``Model`` is one side of the paper's comparison (its ImageNet, detection and
segmentation configs); ``STEPS`` and its twin ``BASELINE`` run through the same
``ChainRecipe`` for the comparison.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .. import ROOT, checkout_path
from .config import write_demo_config, write_pretrain_config

# mim of this interpreter: its console script need not be on PATH (e.g. under pyenv
# before a rehash)
MIM = [sys.executable, '-m', 'mim']


_SAY = threading.Lock()


def say(line: str):
    # a compare's twins print from two threads: one line at a time, whole
    with _SAY:
        print(line, flush=True)


#: the heads a comparison can fine-tune in place of a default one: head -> the
#: stage it is (``tools/demo.py --compare --head``); the default heads are Mask R-CNN
#: (``det``) and UperNet (``seg``)
HEADS = {'cascade': 'det', 'dino': 'det', 'mask2former': 'seg'}
DEFAULT_HEADS = {'det': 'mask-rcnn', 'seg': 'upernet'}
#: each stage's and head's name in plots
TITLES = {'pretrain': 'pretraining (mmpretrain)', 'det': 'Mask R-CNN (mmdet)',
          'seg': 'UperNet (mmseg)', 'cascade': 'Cascade Mask R-CNN (mmdet)',
          'dino': 'DINO (mmdet)', 'mask2former': 'Mask2Former (mmseg)'}


@dataclass(frozen=True)
class Model:
    """One side of the comparison: its shipped ImageNet, Mask R-CNN and UperNet
    configs (paths relative to the repository), the configs of its other heads,
    and what the demo's short runs change in its family's stock recipes (the same
    for both twins)."""
    name: str
    pretrain: str
    det: str
    seg: str
    #: backbone arguments of the pretraining (e.g. ConvNeXt's layer scale)
    pretrain_backbone: Dict = field(default_factory=dict, compare=False)
    #: an optimizer in place of the recipes' (``type`` and its arguments; the lr is
    #: the demo's), for recipes whose optimizer does not train in a few hundred steps
    optimizer: Optional[Dict] = field(default=None, compare=False)
    #: the other heads it is compared under: head (``HEADS``) -> shipped config
    heads: Dict[str, str] = field(default_factory=dict, compare=False)

    def shipped(self, stage: str, head: Optional[str] = None) -> str:
        """The shipped config of ``stage`` (relative to the repository): the
        default head's, or ``head``'s (a head of that stage)."""
        if head is None:
            return getattr(self, stage)
        if HEADS.get(head) != stage or head not in self.heads:
            raise ValueError(f'{self.name} has no {head} config for its {stage} stage')
        return self.heads[head]

    def config(self, stage: str, head: Optional[str] = None) -> str:
        return checkout_path(self.shipped(stage, head))


# ConvNeXt's 1e-6 layer scale leaves the blocks near identity after a few
# epochs; the det/seg configs use 1.0, and so does the demo's pretraining
_CONVNEXT = dict(pretrain_backbone=dict(layer_scale_init_value=1.0))
# the stock ResNet recipes are SGD at lr 0.1 (batch 256) / 0.02 (batch 16) / 0.01
# (batch 16) for 100 / 12 / 160k-iteration schedules; the demo's other families
# train with AdamW at its lrs, and so does this pair (its DINO and Mask2Former
# recipes are AdamW already and keep theirs: see ``stage_config``)
_RESNET = dict(optimizer=dict(type='AdamW', weight_decay=0.05))

#: each comparison of ``tools/demo.py --compare --model NAME``: (Steps model, its
#: twin: the same configs with layout='sequential')
PAIRS = {
    'convnext-t': (
        Model('Steps-ConvNeXt-T', 'configs/imagenet/steps-convnext-tiny_32xb128_in1k.py',
              'configs/steps_convnext_maskrcnn.py', 'configs/steps_convnext_upernet.py',
              heads=dict(cascade='configs/cascade-mask-rcnn_steps-convnext-t-p4-w7_fpn_'
                                 '4conv1fc-giou_amp-ms-crop-3x_coco.py'),
              **_CONVNEXT),
        Model('ConvNeXt-T', 'configs/imagenet/convnext-tiny_32xb128_in1k.py',
              'configs/convnext_maskrcnn.py', 'configs/convnext_upernet.py',
              heads=dict(cascade='configs/cascade-mask-rcnn_convnext-t-p4-w7_fpn_'
                                 '4conv1fc-giou_amp-ms-crop-3x_coco.py'),
              **_CONVNEXT)),
    'swin-t': (
        Model('Steps-Swin-T', 'configs/imagenet/steps-swin-tiny_16xb64_in1k.py',
              'configs/mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py',
              'configs/steps-swin-tiny-patch4-window7_upernet_8xb2-160k_ade20k-512x512.py',
              heads=dict(
                  cascade='configs/cascade-mask-rcnn_steps-swin-t-p4-w7_fpn_4conv1fc-giou_'
                          'amp-ms-crop-3x_coco.py',
                  dino='configs/dino-4scale_steps-swin-t-p4-w7_8xb2-12e_coco.py',
                  mask2former='configs/mask2former_steps-swin-t_8xb2-160k_ade20k-512x512.py')),
        Model('Swin-T', 'configs/imagenet/swin-tiny_16xb64_in1k.py',
              'configs/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
              'configs/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
              heads=dict(
                  cascade='configs/cascade-mask-rcnn_swin-t-p4-w7_fpn_4conv1fc-giou_'
                          'amp-ms-crop-3x_coco.py',
                  dino='configs/dino-4scale_swin-t-p4-w7_8xb2-12e_coco.py',
                  mask2former='configs/mask2former_swin-t_8xb2-160k_ade20k-512x512.py'))),
    'resnet-50': (
        Model('Steps-ResNet-50', 'configs/imagenet/steps-resnet50_8xb32_in1k.py',
              'configs/mask-rcnn_steps-r50_fpn_1x_coco.py',
              'configs/upernet_steps-r50_4xb4-160k_ade20k-512x512.py',
              heads=dict(
                  dino='configs/dino-4scale_steps-r50_8xb2-12e_coco.py',
                  mask2former='configs/mask2former_steps-r50_8xb2-160k_ade20k-512x512.py'),
              **_RESNET),
        Model('ResNet-50', 'configs/imagenet/resnet50_8xb32_in1k.py',
              'configs/mask-rcnn_r50_fpn_1x_coco.py',
              'configs/upernet_r50_4xb4-160k_ade20k-512x512.py',
              heads=dict(dino='configs/dino-4scale_r50_8xb2-12e_coco.py',
                         mask2former='configs/mask2former_r50_8xb2-160k_ade20k-512x512.py'),
              **_RESNET)),
    # the detector is a Mask R-CNN on a simple feature pyramid (ViTDet's neck on the
    # last stride-16 map), the segmentor UperNet on a multi-level neck. The stock
    # DeiT-S recipes train at the demo's scale, so no family recipe: seed 0 of the
    # demo's schedule pretrained both to 98-100% top-1 and their detectors to 25-28
    # box AP (16 validation images; ConvNeXt-T's reach 32-34)
    'deit-s': (
        Model('Steps-DeiT-S', 'configs/imagenet/steps-deit-small_4xb256_in1k.py',
              'configs/mask-rcnn_steps-deit-s16_simple-fpn_rpn-2conv_4conv1fc_syncbn-all_'
              'amp-lsj-100e_coco.py',
              'configs/vit_steps-deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py'),
        Model('DeiT-S', 'configs/imagenet/deit-small_4xb256_in1k.py',
              'configs/mask-rcnn_deit-s16_simple-fpn_rpn-2conv_4conv1fc_syncbn-all_'
              'amp-lsj-100e_coco.py',
              'configs/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py')),
}


def pairs_with(head: str) -> List[str]:
    """The comparisons whose twins both have ``head``."""
    return sorted(name for name, models in PAIRS.items()
                  if all(head in m.heads for m in models))


#: the main job's model and its twin
STEPS, BASELINE = PAIRS['convnext-t']

#: stage -> (codebase, metrics the main job prints)
STAGES = {
    'pretrain': ('mmpretrain', ('accuracy/top1', )),
    'det': ('mmdet', ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
                      'coco/segm_mAP_50')),
    'seg': ('mmseg', ('mIoU', 'aAcc')),
}


@dataclass
class ChainRecipe:
    """The demo's schedule and sizes, the same for both sides of a comparison."""
    pretrain_epochs: int = 12
    pretrain_size: int = 64
    det_iters: int = 180
    seg_iters: int = 60
    size: int = 128  # det/seg images
    num_train: int = 64  # det/seg training images
    num_val: int = 128  # det/seg validation images (the same scenes for both)
    cls_train: int = 64  # pretraining images per class
    cls_val: int = 64
    # write_demo_config keywords; RPN proposals at test: images hold 1-3 objects
    # (stock 1000; the RoI heads' test cost grows with them)
    det_options: Dict = field(default_factory=lambda: dict(num_proposals=300))
    finetune_lr: float = 4e-4  # det/seg (AdamW, batch 2)

    def iters(self, stage: str) -> int:
        return self.det_iters if stage == 'det' else self.seg_iters

    def flops_shapes(self) -> Dict[str, Tuple[int, int]]:
        """The input sizes the demo's models run at (for their FLOPs)."""
        return {'mmpretrain': (self.pretrain_size, ) * 2, 'mmdet': (self.size, ) * 2,
                'mmseg': (self.size, ) * 2}


# mmdet/mmseg log iterations, mmpretrain epochs: Iter(train) [ 10/240], Epoch(train) [3][10/12]
PROGRESS = re.compile(r'(?:Iter|Epoch)\((train|test|val)\) +(\[\d+\])?\[ *(\d+)/(\d+)\]')
ETA, LOSS = re.compile(r'\beta: (\S+)'), re.compile(r'\bloss: ([\d.]+)')


def run_logged(cmd: List[str], log_file: str, echo: Callable[[str], None] = say,
               threads: Optional[int] = None) -> float:
    """Run ``cmd`` from the repository root, keep its full output in ``log_file``,
    echo a compact progress line per logged iteration; returns the seconds it
    took. Raises ``RuntimeError`` naming the log when it fails. ``threads``: the
    CPU threads its torch may use (default: torch's, one per core)."""
    echo('$ ' + ' '.join(cmd))
    start = time.time()
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=ROOT, env=env)
        for line in proc.stdout:
            log.write(line)
            match = PROGRESS.search(line)
            if match:
                eta, loss = ETA.search(line), LOSS.search(line)
                stage, epoch, i, n = match.groups()
                echo(f'    {stage} {"epoch " + epoch[1:-1] + " " if epoch else ""}{i}/{n}'
                     + (f'  loss {loss.group(1)}' if loss else '')
                     + (f'  eta {eta.group(1)}' if eta else ''))
            elif any(k in line for k in ('AutoAmpOptimWrapper:', 'load_pretrained',
                                         'Error')):
                echo('    ' + line.split(' - INFO - ')[-1].rstrip())
        proc.wait()
    if proc.returncode:
        raise RuntimeError(f'failed ({proc.returncode}) after {time.time() - start:.0f}s: '
                           f'{" ".join(cmd)}\nsee {log_file}')
    return time.time() - start


@dataclass
class StageRun:
    """A trained and tested stage: its job dir (``train/`` and ``test/`` inside,
    a run for ``steps_lab.results``), metrics and training time. ``reused``: found
    finished in its job dir (``stage_action``), not trained by this call."""
    job_dir: str
    checkpoint: str
    metrics: Dict[str, float]
    train_seconds: float
    test_seconds: float = 0.0
    reused: bool = False

    @property
    def train_dir(self) -> str:
        return osp.join(self.job_dir, 'train')


#: the seconds a stage's training and test took, beside its train/ and test/
RECORD = 'stage.json'


def train_and_test(codebase: str, cfg: str, job_dir: str, checkpoint_name: str,
                   echo: Callable[[str], None] = say,
                   threads: Optional[int] = None) -> StageRun:
    """``mim train`` then ``mim test`` of the checkpoint it wrote (with the
    per-image predictions dumped beside, ``steps_lab.results.intervals``); the
    seconds of each go to ``job_dir/stage.json``."""
    train_dir = osp.join(job_dir, 'train')
    seconds = run_logged(MIM + ['train', codebase, cfg, '--work-dir', train_dir],
                         osp.join(job_dir, 'train.log'), echo, threads)
    run = test_checkpoint(codebase, cfg, job_dir, osp.join(train_dir, checkpoint_name),
                          echo, threads)
    run.train_seconds = seconds
    _write_record(run)
    return run


def test_checkpoint(codebase: str, cfg: str, job_dir: str, checkpoint: str,
                    echo: Callable[[str], None] = say,
                    threads: Optional[int] = None) -> StageRun:
    """``mim test`` of ``checkpoint`` into ``job_dir/test``, with the per-image
    predictions dumped beside (``steps_lab.results.intervals``)."""
    from ..results import read_run
    from ..results.intervals import dump_args
    test_dir = osp.join(job_dir, 'test')
    seconds = run_logged(MIM + ['test', codebase, cfg, '--checkpoint', checkpoint,
                          '--work-dir', test_dir] + dump_args(codebase, test_dir),
                         osp.join(job_dir, 'test.log'), echo, threads)
    return StageRun(job_dir, checkpoint, read_run(job_dir).test().metrics, 0.0, seconds)


def _write_record(run: StageRun):
    with open(osp.join(run.job_dir, RECORD), 'w') as f:
        json.dump(dict(train_seconds=round(run.train_seconds, 1),
                       test_seconds=round(run.test_seconds, 1)), f)


def recorded_seconds(job_dir: str) -> Dict[str, Optional[float]]:
    """``{'train_seconds', 'test_seconds'}`` of the finished stage in ``job_dir``:
    as ``train_and_test`` recorded them, or, for a stage trained before it did,
    from its files' times: the training from its generated config (written just
    before ``mim train`` started) to the last line of ``train.log``, the test from
    there to the last line of ``test.log``. None where neither is there."""
    path = osp.join(job_dir, RECORD)
    if osp.exists(path):
        with open(path) as f:
            return json.load(f)
    times = {}
    for name in ('train.log', 'test.log'):
        if osp.exists(osp.join(job_dir, name)):
            times[name] = osp.getmtime(osp.join(job_dir, name))
    configs = glob.glob(osp.join(job_dir, '*.py'))
    train = (times['train.log'] - osp.getmtime(configs[0])
             if len(configs) == 1 and 'train.log' in times else None)
    test = (times['test.log'] - times['train.log']
            if len(times) == 2 and times['test.log'] > times['train.log'] else None)
    return dict(train_seconds=None if train is None else round(train, 1),
                test_seconds=None if test is None else round(test, 1))


#: held while a config is generated or resolved: mmengine's ``Config.fromfile`` is
#: not safe to run in two threads at once (``run_compare``'s twins)
CONFIG_LOCK = threading.RLock()


def stage_config(model: Model, stage: str, data_dir: str, job_dir: str,
                 recipe: ChainRecipe, seed: int, backbone_checkpoint: Optional[str] = None,
                 load_from: Optional[str] = None, head: Optional[str] = None) -> str:
    """The generated config of ``model``'s ``stage`` (its ``head``'s config, a
    head of that stage, when given), named after the shipped one (the Runner dumps
    it under that name: the results tool and ``stage_action`` read it back).
    ``load_from``: the pretraining starts from this classifier checkpoint."""
    with CONFIG_LOCK:
        return _stage_config(model, stage, data_dir, job_dir, recipe, seed,
                             backbone_checkpoint, load_from, head)


def _stage_config(model, stage, data_dir, job_dir, recipe, seed, backbone_checkpoint,
                  load_from, head) -> str:
    shipped = model.config(stage, head)
    out = osp.join(job_dir, osp.basename(shipped))
    if stage == 'pretrain':
        return write_pretrain_config(shipped, data_dir, out, epochs=recipe.pretrain_epochs,
                                     size=recipe.pretrain_size, seed=seed,
                                     backbone_options=model.pretrain_backbone,
                                     optimizer=model.optimizer, load_from=load_from)
    if load_from:
        raise ValueError(f'load_from is for the pretraining, not {stage}: give the '
                         f'backbone_checkpoint')
    options = recipe.det_options if stage == 'det' else {}
    # a family's optimizer replaces the stock SGD of its default heads; the other
    # heads' recipes (Cascade, DINO, Mask2Former) are AdamW already and keep theirs
    return write_demo_config(shipped, data_dir, out, iters=recipe.iters(stage),
                             size=recipe.size, lr=recipe.finetune_lr, seed=seed,
                             codebase=STAGES[stage][0],
                             backbone_checkpoint=backbone_checkpoint,
                             optimizer=model.optimizer if head is None else None,
                             **options)


# ---- job dirs and reuse ---------------------------------------------------------
def stage_dir_name(stage: str, recipe: ChainRecipe, head: Optional[str] = None,
                   start: str = 'pretrained') -> str:
    """The job dir's name of ``stage`` under ``recipe`` (one model, one seed):
    ``pretrain``, ``det`` and ``seg`` for the default heads at the default
    schedule (``ChainRecipe()``: 12 epochs, 180 and 60 iterations, lr 4e-4), as
    earlier work dirs and the docs have them; otherwise named after what differs,
    in this order: the head (``det_cascade``), the fine-tuning iterations
    (``det_540it``), its learning rate (``det_lr0.0002``), a start other than the
    pretraining (``det_scratch``), and the pretraining's epochs (``pretrain_6ep``,
    and a fine-tuning from that pretraining ``det_pre6ep``): e.g.
    ``seg_mask2former_180it``. So runs of other schedules and heads in one
    --work-dir do not collide, and share the pretraining they have in common.
    What it does not name (image sizes, the shipped configs, the generated
    overrides) ``stage_action`` checks. The chain, ``read_compare`` (``--reuse``)
    and ``compare.from_twin`` find runs by it."""
    default = ChainRecipe()
    parts = [stage] + ([head] if head else [])
    if stage != 'pretrain':
        if recipe.iters(stage) != default.iters(stage):
            parts.append(f'{recipe.iters(stage)}it')
        if recipe.finetune_lr != default.finetune_lr:
            parts.append(f'lr{recipe.finetune_lr:g}')
        if start != 'pretrained':
            parts.append(start)
    if recipe.pretrain_epochs != default.pretrain_epochs and start == 'pretrained':
        parts.append(('' if stage == 'pretrain' else 'pre') + f'{recipe.pretrain_epochs}ep')
    return '_'.join(parts)


class StageConflict(RuntimeError):
    """A stage's job dir holds a finished run of another config."""


#: what the training tools add to the config they dump, left out when it is
#: compared: mim train's --work-dir and launcher, mmseg's resume flag, and the
#: dataloader defaults mmpretrain's tools/train.py fills in
_TOOL_KEYS = ('work_dir', 'launcher', 'resume')
_LOADER_DEFAULTS = dict(pin_memory=True, persistent_workers=True,
                        collate_fn=dict(type='default_collate'))


def _as_trained(path: str) -> Dict:
    from mmengine.config import Config
    with CONFIG_LOCK:
        cfg = Config.fromfile(path, import_custom_modules=False).to_dict()
    for key in _TOOL_KEYS:
        cfg.pop(key, None)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if isinstance(cfg.get(key), dict):
            cfg[key] = dict(_LOADER_DEFAULTS, **cfg[key])
    return cfg


def config_differences(generated: str, trained: str, limit: int = 5) -> List[str]:
    """Where the config ``generated`` (resolved through its ``_base_``, so an
    edited shipped config counts) differs from ``trained``, the config a Runner
    dumped as it trained: ``key: trained -> generated`` lines, at most ``limit``."""
    lines: List[str] = []

    def walk(new, old, path):
        if isinstance(new, dict) and isinstance(old, dict):
            for key in sorted(set(new) | set(old), key=str):
                walk(new.get(key, '<absent>'), old.get(key, '<absent>'),
                     f'{path}.{key}' if path else str(key))
        elif (isinstance(new, (list, tuple)) and isinstance(old, (list, tuple))
              and len(new) == len(old) and type(new) is type(old)):
            for index, (a, b) in enumerate(zip(new, old)):
                walk(a, b, f'{path}[{index}]')
        elif new != old or type(new) is not type(old):
            lines.append(f'{path}: {_short(old)} -> {_short(new)}')

    walk(_as_trained(generated), _as_trained(trained), '')
    return lines[:limit] + ([f'... ({len(lines) - limit} more)'] if len(lines) > limit else [])


def _short(value, width: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + '...'


def _tested(job_dir: str, checkpoint: str) -> bool:
    """A test of ``checkpoint`` in ``job_dir/test`` finished after it was written,
    with its metrics and the per-image dump the intervals need."""
    from ..results.intervals import PREDICTIONS_DIR, PREDICTIONS_FILE
    from ..results.workdir import find_sessions
    test_dir = osp.join(job_dir, 'test')
    if not (osp.exists(osp.join(test_dir, PREDICTIONS_FILE))
            or osp.isdir(osp.join(test_dir, PREDICTIONS_DIR))):
        return False
    return any(s.metrics_file and osp.getmtime(s.metrics_file) >= osp.getmtime(checkpoint)
               and s.checkpoint and osp.abspath(s.checkpoint) == osp.abspath(checkpoint)
               for s in find_sessions(test_dir))


def stage_action(cfg: str, job_dir: str, checkpoint_name: str,
                 inputs: Sequence[Optional[str]] = ()) -> str:
    """What the chain does with a stage whose freshly generated config is
    ``cfg``, given what ``job_dir`` holds:

    * ``'reuse'``: the config the Runner dumped there as it trained resolves to
      the same as ``cfg`` (keys the tools add aside), its ``checkpoint_name`` is
      there, a test of that checkpoint with its per-image dump is there, and none
      of ``inputs`` (the checkpoint it started from, the data's build stamp) was
      written after the checkpoint: nothing measured would change by training it
      again;
    * ``'test'``: the same, but the test is missing (a run stopped between
      training and test): only the test runs;
    * ``'train'``: nothing finished there, an unfinished run (no checkpoint: it is
      trained over), or a finished run of the same config on inputs that changed
      since (e.g. the pretraining it loaded was trained again: it is stale).

    A finished run (any checkpoint in ``train/``) of a *different* config raises
    ``StageConflict`` naming the differences: it is not overwritten. Overwriting
    would lose a run that other commands read (``--reuse``, the summaries that
    quote it), and a comparison stopped halfway would leave seeds and twins on two
    configs that a later summary would mix; a change the job dir's name does not
    record (``stage_dir_name``) is the user's to place: another --work-dir, or the
    dir removed.
    """
    trained = osp.join(job_dir, 'train', osp.basename(cfg))
    checkpoint = osp.join(job_dir, 'train', checkpoint_name)
    finished = glob.glob(osp.join(job_dir, 'train', '*.pth'))
    if not osp.exists(trained):
        if finished:
            raise StageConflict(f'{job_dir} holds a finished run of another config '
                                f'(no {osp.basename(cfg)} in its train/)')
        return 'train'
    differences = config_differences(cfg, trained)
    if differences:
        if finished:
            raise StageConflict(
                f'{job_dir} holds a finished run of another config than this one; '
                f'it is kept, not trained over. What differs (as trained -> now):\n  '
                + '\n  '.join(differences) + '\nUse another --work-dir, or remove '
                f'{job_dir} to train it again.')
        return 'train'
    if not osp.exists(checkpoint):
        return 'train'
    made = osp.getmtime(checkpoint)
    if any(path and osp.exists(path) and osp.getmtime(path) > made for path in inputs):
        return 'train'
    return 'reuse' if _tested(job_dir, checkpoint) else 'test'


def plan_stage(model: Model, stage: str, data_dir: str, job_dir: str, recipe: ChainRecipe,
               seed: int, backbone_checkpoint: Optional[str] = None,
               load_from: Optional[str] = None, head: Optional[str] = None) -> str:
    """``stage_action`` of the stage ``stage_config`` would write into ``job_dir``
    (generated aside, so ``job_dir`` is left as it is)."""
    from .data import data_stamp
    with tempfile.TemporaryDirectory() as scratch:
        cfg = stage_config(model, stage, data_dir, scratch, recipe, seed,
                           backbone_checkpoint, load_from, head)
        data = data_dir if stage != 'pretrain' else osp.join(data_dir, 'imagenet')
        inputs = [data_stamp(data), load_from,
                  None if backbone_checkpoint == 'scratch' else backbone_checkpoint]
        return stage_action(cfg, job_dir, checkpoint_name(stage, recipe), inputs)


def checkpoint_name(stage: str, recipe: ChainRecipe) -> str:
    return (f'epoch_{recipe.pretrain_epochs}.pth' if stage == 'pretrain'
            else f'iter_{recipe.iters(stage)}.pth')


@dataclass
class ChainStage:
    """One stage of a chain as ``plan_chain`` found it: its key in ``run_chain``'s
    result (``'det'``, ``'det/scratch'``), stage, head, job dir and action."""
    key: str
    stage: str
    head: Optional[str]
    job_dir: str
    action: str
    start: str = 'pretrained'

    @property
    def units(self) -> str:
        return 'epochs' if self.stage == 'pretrain' else 'iterations'


def finished_job_dir(work_dir: str, stage: str, recipe: ChainRecipe,
                     head: Optional[str] = None, start: str = 'pretrained') -> str:
    """The job dir of a finished ``stage`` under ``work_dir``: ``stage_dir_name``'s,
    or, where there is none, the one chains before it gave the default heads at
    every schedule (``pretrain``, ``det``, ``seg``, ``det_scratch``) when that holds
    this schedule's last checkpoint (e.g. ``det`` with ``iter_540.pth``)."""
    named = osp.join(work_dir, stage_dir_name(stage, recipe, head, start))
    legacy = osp.join(work_dir, stage if start == 'pretrained' else f'{stage}_{start}')
    if (not head and legacy != named and not osp.isdir(named)
            and osp.exists(osp.join(legacy, 'train', checkpoint_name(stage, recipe)))):
        return legacy
    return named


def plan_chain(model: Model, data_dir: str, work_dir: str, recipe: ChainRecipe,
               seed: int = 0, stages: Tuple[str, ...] = ('det', 'seg'),
               starts: Tuple[str, ...] = ('pretrained', ),
               head: Optional[str] = None) -> List[ChainStage]:
    """The stages ``run_chain`` would run, each with its job dir and
    ``stage_action``; a stage after one that trains trains too (its input
    changes). A stage of another schedule that an earlier chain left under the
    old name (``finished_job_dir``) is reused or tested there when its config is
    this one; otherwise it goes to ``stage_dir_name``'s dir. Raises
    ``StageConflict`` for the first job dir holding a finished run of another
    config, before anything trains."""
    def place(stage, stage_head, start, **options):
        named = osp.join(work_dir, stage_dir_name(stage, recipe, stage_head, start))
        found = finished_job_dir(work_dir, stage, recipe, stage_head, start)
        if found != named:
            try:
                action = plan_stage(model, stage, data_dir, found, recipe, seed,
                                    head=stage_head, **options)
                if action != 'train':
                    return found, action
            except StageConflict:
                pass
        return named, plan_stage(model, stage, data_dir, named, recipe, seed,
                                 head=stage_head, **options)

    pretrain = ChainStage('pretrain', 'pretrain', None,
                          *place('pretrain', None, 'pretrained'))
    plan = [pretrain]
    checkpoint = osp.join(pretrain.job_dir, 'train', checkpoint_name('pretrain', recipe))
    for stage in stages:
        stage_head = head if head and HEADS[head] == stage else None
        for start in starts:
            job_dir, action = place(stage, stage_head, start, backbone_checkpoint=(
                checkpoint if start == 'pretrained' else start))
            if start == 'pretrained' and pretrain.action == 'train':
                action = 'train'
            plan.append(ChainStage(stage if start == 'pretrained' else f'{stage}/{start}',
                                   stage, stage_head, job_dir, action, start))
    return plan


def reuse_stage(job_dir: str, checkpoint: str) -> StageRun:
    """The finished stage in ``job_dir`` as a ``StageRun`` (``reused``)."""
    from ..results import read_run
    seconds = recorded_seconds(job_dir)
    return StageRun(job_dir, checkpoint, read_run(job_dir).test().metrics,
                    seconds.get('train_seconds') or 0.0, seconds.get('test_seconds') or 0.0,
                    reused=True)


def _test_trained(codebase: str, cfg: str, job_dir: str, checkpoint: str,
                  echo: Callable[[str], None], threads: Optional[int]) -> StageRun:
    """``test_checkpoint`` of a training found finished, with its recorded
    training time."""
    run = test_checkpoint(codebase, cfg, job_dir, checkpoint, echo, threads)
    run.train_seconds = recorded_seconds(job_dir).get('train_seconds') or 0.0
    _write_record(run)
    return run


def run_chain(model: Model, data_dir: str, work_dir: str, recipe: ChainRecipe,
              seed: int = 0,
              stages: Tuple[str, ...] = ('det', 'seg'), starts: Tuple[str, ...] = ('pretrained', ),
              echo: Callable[[str], None] = say,
              threads: Optional[int] = None, head: Optional[str] = None,
              progress: Optional[Callable[[ChainStage, str], None]] = None,
              plan: Optional[List[ChainStage]] = None) -> Dict[str, StageRun]:
    """Pretrain ``model`` and fine-tune each of ``stages`` from its checkpoint
    (and, for ``'scratch'`` in ``starts``, from scratch), each trained and tested
    (``threads``: see ``run_logged``), in the job dirs ``stage_dir_name`` names
    under ``work_dir``. ``head`` (``HEADS``): its stage fine-tunes that head's
    config in place of the default one. A stage already finished in its job dir on
    the same config is not trained again (``stage_action``; a finished run of
    another config raises ``StageConflict`` before anything trains).
    ``progress(stage, 'start' | 'done')`` is called around each stage. ``plan``:
    ``plan_chain``'s of these arguments, made just before (by default made here).
    Returns ``{'pretrain': run, 'det': run, 'det/scratch': run, ...}``."""
    if head and HEADS[head] not in stages:
        raise ValueError(f'head {head!r} is a {HEADS[head]} head; stages are {stages}')
    runs = {}
    if plan is None:
        plan = plan_chain(model, data_dir, work_dir, recipe, seed, stages, starts, head)
    for item in plan:
        if progress:
            progress(item, 'start')
        os.makedirs(item.job_dir, exist_ok=True)
        stage, job_dir = item.stage, item.job_dir
        name = checkpoint_name(stage, recipe)
        if item.action == 'reuse':
            echo(f'[demo] {model.name}: reusing {item.key} in {job_dir}')
            runs[item.key] = reuse_stage(job_dir, osp.join(job_dir, 'train', name))
        elif stage == 'pretrain':
            cfg = stage_config(model, 'pretrain', data_dir, job_dir, recipe, seed)
            checkpoint = osp.join(job_dir, 'train', name)
            if item.action == 'test':
                echo(f'[demo] {model.name}: reusing the training of {item.key} in {job_dir}; '
                     f'testing it')
                runs[item.key] = _test_trained('mmpretrain', cfg, job_dir, checkpoint,
                                               echo, threads)
            else:
                echo(f'[demo] {model.name}: pretrain {model.pretrain} on the built-in '
                     f'ImageNet-format set, {recipe.pretrain_epochs} epochs (seed {seed})')
                runs[item.key] = train_and_test('mmpretrain', cfg, job_dir, name, echo,
                                                threads)
        else:
            start = item.start
            checkpoint = runs['pretrain'].checkpoint if start == 'pretrained' else start
            cfg = stage_config(model, stage, data_dir, job_dir, recipe, seed, checkpoint,
                               head=item.head)
            started = time.time()
            if item.action == 'test':
                echo(f'[demo] {model.name}: reusing the training of {item.key} in {job_dir}; '
                     f'testing it')
                runs[item.key] = _test_trained(STAGES[stage][0], cfg, job_dir,
                                               osp.join(job_dir, 'train', name), echo,
                                               threads)
            else:
                echo(f'[demo] {model.name}: {stage} {model.shipped(stage, item.head)} from '
                     f'{start}, {recipe.iters(stage)} iterations')
                runs[item.key] = train_and_test(STAGES[stage][0], cfg, job_dir, name, echo,
                                                threads)
                echo(f'[demo] {model.name}: {stage} from {start} trained in '
                     f'{runs[item.key].train_seconds:.0f} s, trained and tested in '
                     f'{time.time() - started:.0f} s')
        if progress:
            progress(item, 'done')
    return runs


def plot_curves(panels: Dict[str, Dict[str, List[Tuple[int, float]]]], out_file: str,
                ylabel: str = 'training loss') -> str:
    """One panel per title, one line per label: ``{title: {label: [(x, y)]}}``."""
    from ..report import new_figure, save_figure
    fig, axes = new_figure(len(panels), width=5, height=3.5)
    for ax, (title, curves) in zip(axes, panels.items()):
        for label, points in curves.items():
            ax.plot([p[0] for p in points], [p[1] for p in points], marker='.',
                    markersize=3, label=label)
        ax.set(title=title, xlabel='iteration', ylabel=ylabel)
        ax.grid(alpha=.3)
        ax.legend(fontsize=8)
    return save_figure(fig, osp.dirname(osp.abspath(out_file)), osp.basename(out_file))
