"""The demo's chain, the paper's at laptop scale: pretrain a backbone with
``mim train mmpretrain`` on the built-in ImageNet-format set, then fine-tune and
test its Mask R-CNN and UperNet from that checkpoint with ``mim train`` /
``mim test`` of mmdet and mmseg, each on a config that inherits the shipped one
(``write_pretrain_config`` / ``write_demo_config``).

One ``Model`` is one side of the paper's comparison (its ImageNet, detection and
segmentation configs); ``STEPS`` and its twin ``BASELINE`` run through the same
``ChainRecipe`` for the comparison.
"""
import os
import os.path as osp
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .. import ROOT, checkout_path
from .config import write_demo_config, write_pretrain_config

# mim of this interpreter: its console script need not be on PATH (e.g. under pyenv
# before a rehash)
MIM = [sys.executable, '-m', 'mim']


def say(line: str):
    print(line, flush=True)


@dataclass(frozen=True)
class Model:
    """One side of the comparison: its shipped ImageNet, Mask R-CNN and UperNet
    configs (paths relative to the repository), and what the demo's short runs
    change in its family's stock recipes (the same for both twins)."""
    name: str
    pretrain: str
    det: str
    seg: str
    #: backbone arguments of the pretraining (e.g. ConvNeXt's layer scale)
    pretrain_backbone: Dict = field(default_factory=dict, compare=False)
    #: an optimizer in place of the recipes' (``type`` and its arguments; the lr is
    #: the demo's), for recipes whose optimizer does not train in a few hundred steps
    optimizer: Optional[Dict] = field(default=None, compare=False)

    def config(self, stage: str) -> str:
        return checkout_path(getattr(self, stage))


# ConvNeXt's 1e-6 layer scale leaves the blocks near identity after a few
# epochs; the det/seg configs use 1.0, and so does the demo's pretraining
_CONVNEXT = dict(pretrain_backbone=dict(layer_scale_init_value=1.0))
# the stock ResNet recipes are SGD at lr 0.1 (batch 256) / 0.02 (batch 16) / 0.01
# (batch 16) for 100 / 12 / 160k-iteration schedules; the demo's other families
# train with AdamW at its lrs, and so does this pair
_RESNET = dict(optimizer=dict(type='AdamW', weight_decay=0.05))

#: each comparison of ``tools/demo.py --compare --model NAME``: (Steps model, its
#: twin: the same configs with layout='sequential')
PAIRS = {
    'convnext-t': (
        Model('Steps-ConvNeXt-T', 'configs/imagenet/steps-convnext-tiny_32xb128_in1k.py',
              'configs/steps_convnext_maskrcnn.py', 'configs/steps_convnext_upernet.py',
              **_CONVNEXT),
        Model('ConvNeXt-T', 'configs/imagenet/convnext-tiny_32xb128_in1k.py',
              'configs/convnext_maskrcnn.py', 'configs/convnext_upernet.py', **_CONVNEXT)),
    'swin-t': (
        Model('Steps-Swin-T', 'configs/imagenet/steps-swin-tiny_16xb64_in1k.py',
              'configs/mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py',
              'configs/steps-swin-tiny-patch4-window7_upernet_8xb2-160k_ade20k-512x512.py'),
        Model('Swin-T', 'configs/imagenet/swin-tiny_16xb64_in1k.py',
              'configs/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
              'configs/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py')),
    'resnet-50': (
        Model('Steps-ResNet-50', 'configs/imagenet/steps-resnet50_8xb32_in1k.py',
              'configs/mask-rcnn_steps-r50_fpn_1x_coco.py',
              'configs/upernet_steps-r50_4xb4-160k_ade20k-512x512.py', **_RESNET),
        Model('ResNet-50', 'configs/imagenet/resnet50_8xb32_in1k.py',
              'configs/mask-rcnn_r50_fpn_1x_coco.py',
              'configs/upernet_r50_4xb4-160k_ade20k-512x512.py', **_RESNET)),
}
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
    a run for ``steps_lab.results``), metrics and training time."""
    job_dir: str
    checkpoint: str
    metrics: Dict[str, float]
    train_seconds: float

    @property
    def train_dir(self) -> str:
        return osp.join(self.job_dir, 'train')


def train_and_test(codebase: str, cfg: str, job_dir: str, checkpoint_name: str,
                   echo: Callable[[str], None] = say,
                   threads: Optional[int] = None) -> StageRun:
    """``mim train`` then ``mim test`` of the checkpoint it wrote (with the
    per-image predictions dumped beside, ``steps_lab.results.intervals``)."""
    train_dir = osp.join(job_dir, 'train')
    seconds = run_logged(MIM + ['train', codebase, cfg, '--work-dir', train_dir],
                         osp.join(job_dir, 'train.log'), echo, threads)
    run = test_checkpoint(codebase, cfg, job_dir, osp.join(train_dir, checkpoint_name),
                          echo, threads)
    run.train_seconds = seconds
    return run


def test_checkpoint(codebase: str, cfg: str, job_dir: str, checkpoint: str,
                    echo: Callable[[str], None] = say,
                    threads: Optional[int] = None) -> StageRun:
    """``mim test`` of ``checkpoint`` into ``job_dir/test``, with the per-image
    predictions dumped beside (``steps_lab.results.intervals``)."""
    from ..results import read_run
    from ..results.intervals import dump_args
    test_dir = osp.join(job_dir, 'test')
    run_logged(MIM + ['test', codebase, cfg, '--checkpoint', checkpoint,
                '--work-dir', test_dir] + dump_args(codebase, test_dir),
               osp.join(job_dir, 'test.log'), echo, threads)
    return StageRun(job_dir, checkpoint, read_run(job_dir).test().metrics, 0.0)


def stage_config(model: Model, stage: str, data_dir: str, job_dir: str,
                 recipe: ChainRecipe, seed: int, backbone_checkpoint: Optional[str] = None,
                 load_from: Optional[str] = None) -> str:
    """The generated config of ``model``'s ``stage``, named after the shipped one
    (the Runner dumps it under that name: the results tool reads it back).
    ``load_from``: the pretraining starts from this classifier checkpoint."""
    shipped = model.config(stage)
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
    return write_demo_config(shipped, data_dir, out, iters=recipe.iters(stage),
                             size=recipe.size, lr=recipe.finetune_lr, seed=seed,
                             codebase=STAGES[stage][0],
                             backbone_checkpoint=backbone_checkpoint,
                             optimizer=model.optimizer, **options)


def run_chain(model: Model, data_dir: str, work_dir: str, recipe: ChainRecipe,
              seed: int = 0,
              stages: Tuple[str, ...] = ('det', 'seg'), starts: Tuple[str, ...] = ('pretrained', ),
              echo: Callable[[str], None] = say,
              threads: Optional[int] = None) -> Dict[str, StageRun]:
    """Pretrain ``model`` and fine-tune each of ``stages`` from its checkpoint
    (and, for ``'scratch'`` in ``starts``, from scratch), each trained and tested
    (``threads``: see ``run_logged``).
    Returns ``{'pretrain': run, 'det': run, 'det/scratch': run, ...}``."""
    runs = {}
    job_dir = osp.join(work_dir, 'pretrain')
    cfg = stage_config(model, 'pretrain', data_dir, job_dir, recipe, seed)
    echo(f'[demo] {model.name}: pretrain {model.pretrain} on the built-in ImageNet-format '
         f'set, {recipe.pretrain_epochs} epochs (seed {seed})')
    runs['pretrain'] = train_and_test('mmpretrain', cfg, job_dir,
                                      f'epoch_{recipe.pretrain_epochs}.pth', echo, threads)
    for stage in stages:
        for start in starts:
            name = stage if start == 'pretrained' else f'{stage}/{start}'
            job_dir = osp.join(work_dir, stage if start == 'pretrained'
                               else f'{stage}_{start}')
            checkpoint = runs['pretrain'].checkpoint if start == 'pretrained' else start
            cfg = stage_config(model, stage, data_dir, job_dir, recipe, seed, checkpoint)
            iters = recipe.iters(stage)
            echo(f'[demo] {model.name}: {stage} {getattr(model, stage)} from {start}, '
                 f'{iters} iterations')
            started = time.time()
            runs[name] = train_and_test(STAGES[stage][0], cfg, job_dir,
                                        f'iter_{iters}.pth', echo, threads)
            echo(f'[demo] {model.name}: {stage} from {start} trained in '
                 f'{runs[name].train_seconds:.0f} s, trained and tested in '
                 f'{time.time() - started:.0f} s')
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
