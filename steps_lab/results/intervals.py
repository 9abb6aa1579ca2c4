"""How sure a Steps-minus-twin delta is: per-image scores and bootstrap intervals.

A test run's metric (top-1, COCO AP, mIoU) is a function of its validation images.
``ImageScores`` keeps what each image contributed (a correct prediction; COCO's
per-image matches; per-class pixel intersections and unions), so the metric can be
recomputed on any resample of the images; recomputed on all of them it equals what
the tool reported (``tests/lab/results/test_intervals.py`` checks each against the stock
evaluator).

``delta_interval`` gives the mean Steps-minus-twin delta over seeds an interval
that holds both sources of noise. Test-set noise: the validation images are
bootstrapped, one resample for every seed and both twins (all were tested on the
same images, so the image noise is shared, not averaged away over seeds). Training
noise: the spread of the per-seed deltas, with Student's t on ``seeds - 1``
degrees of freedom (a bootstrap over three seeds gives intervals too narrow).
The two variances add; the interval is the mean delta ± t times their root, t
with the Welch-Satterthwaite degrees of freedom of the sum (n - 1 where the seeds
dominate, the normal quantile where the images do). With one seed only the images are resampled (a
percentile interval), and the interval says nothing about training noise. Its
verdict: *ahead* when the whole interval is above 0, *behind* when below, *within
noise* otherwise. ``tests/lab/results/test_intervals.py`` checks that a null delta is called
ahead or behind about 5% of the time under either kind of noise.

What a verdict could have seen: beside each interval, ``detectable`` is the
smallest true difference that a comparison of this design (these seeds, these
images, noise of the size measured) calls ahead (or, negative, behind) 80% of
the time: the interval's standard error times the non-centrality at which
Student's t on the same degrees of freedom exceeds its 97.5% quantile with
probability 0.8 (2.80 standard errors where the images dominate, 5.65 with
three seeds where the seeds do). A "within noise" with a detectable effect of 2
rules out far more than one with 18. The same test simulates twins that differ
by it and checks that about 80% are called.

Per-image scores come from the stock tools' own prediction dumps, which
``mim test`` writes when asked (``read_image_scores``):

    mim test mmpretrain CFG --checkpoint C --work-dir W --out W/predictions.pkl --out-item pred
    mim test mmdet CFG --checkpoint C --work-dir W --out W/predictions.pkl
    mim test mmseg CFG --checkpoint C --work-dir W --out W/predictions
"""
import glob
import os.path as osp
import pickle
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: the dumps ``read_image_scores`` looks for beside a test session's folder
PREDICTIONS_FILE, PREDICTIONS_DIR = 'predictions.pkl', 'predictions'
LEVEL = 0.95
POWER = 0.8  # of ``detectable``
VERDICTS = ('ahead', 'behind', 'within noise')


class ImageScores:
    """A metric that can be recomputed on a resample of the validation images
    (``value(indices)``, indices into ``image_ids``; repeats allowed)."""
    column: str
    image_ids: List[str]

    def value(self, indices: Optional[np.ndarray] = None) -> float:
        raise NotImplementedError

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def _all(self, indices):
        return np.arange(self.num_images) if indices is None else indices


class Top1Scores(ImageScores):
    """Top-1 accuracy in percent from per-image correctness."""

    def __init__(self, image_ids: Sequence[str], correct: np.ndarray):
        self.column, self.image_ids = 'top-1', list(image_ids)
        self.correct = np.asarray(correct, dtype=float)

    def value(self, indices=None) -> float:
        return 100.0 * float(self.correct[self._all(indices)].mean())


class IoUScores(ImageScores):
    """mIoU in percent (mmseg's: the per-class IoU of the summed pixel counts,
    averaged over the classes that occur) from per-image, per-class counts."""

    def __init__(self, image_ids: Sequence[str], intersect: np.ndarray, union: np.ndarray):
        self.column, self.image_ids = 'mIoU', list(image_ids)
        self.intersect, self.union = np.asarray(intersect, float), np.asarray(union, float)

    def value(self, indices=None) -> float:
        indices = self._all(indices)
        union = self.union[indices].sum(0)
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = self.intersect[indices].sum(0) / union
        return 100.0 * float(np.nanmean(iou))


class CocoScores(ImageScores):
    """COCO AP in percent (IoU 0.50:0.95, all areas, up to ``max_dets``
    detections per image) from COCOeval's per-image matches, accumulated as
    ``COCOeval.accumulate`` does over the resampled images."""

    def __init__(self, column: str, image_ids: Sequence[str], eval_imgs: List[List],
                 iou_thrs: np.ndarray, rec_thrs: np.ndarray, max_dets: int):
        # eval_imgs[k][i]: COCOeval's evalImgs entry of category k, image i (area 'all')
        self.column, self.image_ids = column, list(image_ids)
        self.iou_thrs, self.rec_thrs, self.max_dets = iou_thrs, rec_thrs, max_dets
        self.per_category = [self._flatten(row) for row in eval_imgs]

    def _flatten(self, row):
        """Per image: scores (D,), matched (T, D), ignored (T, D), non-ignored
        ground truths; concatenated once so a resample only gathers."""
        scores, matched, ignored, gts, offsets = [], [], [], [], [0]
        for e in row:
            if e is None:
                s = np.zeros(0)
                m = ig = np.zeros((len(self.iou_thrs), 0), bool)
                g = 0
            else:
                s = np.asarray(e['dtScores'][:self.max_dets], float)
                m = np.asarray(e['dtMatches'][:, :self.max_dets]) != 0
                ig = np.asarray(e['dtIgnore'][:, :self.max_dets], bool)
                g = int(np.count_nonzero(np.asarray(e['gtIgnore']) == 0))
            scores.append(s), matched.append(m), ignored.append(ig), gts.append(g)
            offsets.append(offsets[-1] + len(s))
        return dict(scores=np.concatenate(scores), matched=np.concatenate(matched, 1),
                    ignored=np.concatenate(ignored, 1), gts=np.asarray(gts),
                    offsets=np.asarray(offsets))

    def value(self, indices=None) -> float:
        indices = self._all(indices)
        precisions = [p for p in (self._precision(c, indices) for c in self.per_category)
                      if p is not None]
        return 100.0 * float(np.mean(precisions)) if precisions else float('nan')

    def _precision(self, c: Dict, indices: np.ndarray) -> Optional[np.ndarray]:
        """(T, R) interpolated precision of one category, or None without
        ground truth (COCO's -1, left out of the mean)."""
        num_gts = int(c['gts'][indices].sum())
        if num_gts == 0:
            return None
        starts = c['offsets'][indices]
        lengths = c['offsets'][indices + 1] - starts
        # the detections of the resampled images, in order (np.arange per image, vectorised)
        take = np.arange(lengths.sum()) + np.repeat(starts - np.cumsum(lengths) + lengths,
                                                    lengths)
        order = np.argsort(-c['scores'][take], kind='mergesort')
        matched, ignored = c['matched'][:, take[order]], c['ignored'][:, take[order]]
        tps = np.cumsum(matched & ~ignored, axis=1, dtype=float)
        fps = np.cumsum(~matched & ~ignored, axis=1, dtype=float)
        out = np.zeros((len(self.iou_thrs), len(self.rec_thrs)))
        for t in range(len(self.iou_thrs)):
            recall = tps[t] / num_gts
            precision = tps[t] / (fps[t] + tps[t] + np.spacing(1))
            # the precision envelope: highest precision at any higher recall
            precision = np.maximum.accumulate(precision[::-1])[::-1]
            found = np.searchsorted(recall, self.rec_thrs, side='left')
            valid = found < len(precision)
            out[t, valid] = precision[found[valid]]
        return out


# ---- reading the tools' dumps ---------------------------------------------------
def _load_pickle(path: str):
    with open(path, 'rb') as f:
        return pickle.load(f)


def top1_scores(predictions_file: str) -> Top1Scores:
    """From mmpretrain's ``--out F --out-item pred`` dump."""
    rows = _load_pickle(predictions_file)
    rows = sorted(rows, key=lambda r: r['img_path'])
    correct = [int(np.asarray(r['pred_label']).reshape(-1)[0])
               == int(np.asarray(r['gt_label']).reshape(-1)[0]) for r in rows]
    # named below the set's own folder: the same images match wherever the set lies
    paths = [r['img_path'] for r in rows]
    root = osp.commonpath(paths) if len(paths) > 1 else osp.dirname(paths[0])
    return Top1Scores([osp.relpath(p, root) for p in paths], np.asarray(correct))


def coco_scores(predictions_file: str, ann_file: str) -> Dict[str, CocoScores]:
    """``{'AP^box': ..., 'AP^mask': ...}`` from mmdet's ``--out F`` dump and the
    ground truth it was tested on, evaluated per image as mmdet's ``CocoMetric``
    does (its ``proposal_nums`` (100, 300, 1000) as ``maxDets``; AP at the last)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
    cat_ids = gt.getCatIds()
    rows = sorted(_load_pickle(predictions_file), key=lambda r: r['img_id'])
    image_ids = [r['img_id'] for r in rows]
    missing = sorted(set(gt.getImgIds()) - set(image_ids))
    if missing:
        raise ValueError(f'{predictions_file} has no predictions for {len(missing)} of the '
                         f'{len(gt.getImgIds())} images of {ann_file} (e.g. id {missing[0]}): '
                         f'test the whole validation set')
    results = {'bbox': [], 'segm': []}
    for row in rows:
        pred = row['pred_instances']
        boxes, scores = np.asarray(pred['bboxes'], float), np.asarray(pred['scores'], float)
        labels = np.asarray(pred['labels'], int)
        masks = pred.get('masks', [])
        for j in range(len(scores)):
            x0, y0, x1, y1 = boxes[j]
            item = dict(image_id=row['img_id'], category_id=cat_ids[labels[j]],
                        score=float(scores[j]))
            results['bbox'].append(dict(item, bbox=[x0, y0, x1 - x0, y1 - y0]))
            if len(masks):
                rle = dict(masks[j])
                if isinstance(rle['counts'], bytes):
                    rle['counts'] = rle['counts'].decode()
                results['segm'].append(dict(item, segmentation=rle))
    out = {}
    for iou_type, column in (('bbox', 'AP^box'), ('segm', 'AP^mask')):
        if not results[iou_type]:
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator = COCOeval(gt, gt.loadRes(results[iou_type]), iou_type)
            evaluator.params.imgIds = image_ids
            evaluator.params.maxDets = [100, 300, 1000]
            evaluator.evaluate()
        p = evaluator.params
        num_areas, num_images = len(p.areaRng), len(p.imgIds)
        # evalImgs is ordered category, area range, image; area 'all' is first
        eval_imgs = [[evaluator.evalImgs[k * num_areas * num_images + i]
                      for i in range(num_images)] for k in range(len(p.catIds))]
        out[column] = CocoScores(column, [str(i) for i in image_ids], eval_imgs,
                                 p.iouThrs, p.recThrs, p.maxDets[-1])
    return out


def iou_scores(predictions_dir: str, gt_dir: str, num_classes: int,
               reduce_zero_label: bool, gt_suffix: str = '.png',
               ignore_index: int = 255) -> IoUScores:
    """From mmseg's ``--out DIR`` dump (one PNG per image, in the annotations'
    encoding) and the annotation folder it was tested on."""
    from PIL import Image
    files = sorted(glob.glob(osp.join(predictions_dir, '*.png')))
    if not files:
        raise ValueError(f'{predictions_dir}: no predicted PNG (mim test mmseg ... --out DIR)')
    names, intersect, union = [], [], []
    for path in files:
        name = osp.splitext(osp.basename(path))[0]
        pred = np.asarray(Image.open(path), np.int64)
        label = np.asarray(Image.open(osp.join(gt_dir, name + gt_suffix)), np.int64)
        if reduce_zero_label:  # as mmseg's LoadAnnotations: 0 -> ignored, k -> k - 1
            pred, label = pred - 1, label - 1
            label[label == -1] = ignore_index
        valid = label != ignore_index
        pred, label = pred[valid], label[valid]
        hit = np.bincount(label[pred == label], minlength=num_classes)[:num_classes]
        area_pred = np.bincount(pred[(pred >= 0) & (pred < num_classes)],
                                minlength=num_classes)[:num_classes]
        area_label = np.bincount(label, minlength=num_classes)[:num_classes]
        names.append(name)
        intersect.append(hit)
        union.append(area_pred + area_label - hit)
    return IoUScores(names, np.stack(intersect), np.stack(union))


def read_image_scores(test_session) -> Dict[str, ImageScores]:
    """The per-image scores of a test session (``steps_lab.results.workdir.Session``)
    from the dump beside its folder; ``{}`` when it left none."""
    folder = osp.dirname(test_session.dir)
    cfg = test_session.config
    scope = cfg.get('default_scope')
    dump, dump_dir = osp.join(folder, PREDICTIONS_FILE), osp.join(folder, PREDICTIONS_DIR)
    if scope == 'mmpretrain' and osp.exists(dump):
        return {'top-1': top1_scores(dump)}
    if scope == 'mmdet' and osp.exists(dump):
        return coco_scores(dump, cfg.test_evaluator['ann_file'])
    if scope == 'mmseg' and osp.isdir(dump_dir):
        dataset = cfg.test_dataloader['dataset']
        gt_dir = osp.join(dataset['data_root'], dataset['data_prefix']['seg_map_path'])
        classes = dataset['metainfo']['classes']
        return {'mIoU': iou_scores(dump_dir, gt_dir, len(classes),
                                   dataset.get('reduce_zero_label', False),
                                   dataset.get('seg_map_suffix', '.png'))}
    return {}


# ---- the interval ---------------------------------------------------------------
@dataclass
class Interval:
    """A Steps-minus-twin delta over seeds: its mean, the interval and
    the verdict, with how much evidence is behind it and the smallest true
    difference it would call 80% of the time (``detectable``)."""
    column: str
    delta: float  # mean over seeds of the per-seed delta on all images
    low: float
    high: float
    seeds: int
    images: int
    level: float = LEVEL
    detectable: float = float('nan')
    power: float = POWER

    @property
    def verdict(self) -> str:
        return VERDICTS[0] if self.low > 0 else VERDICTS[1] if self.high < 0 \
            else VERDICTS[2]

    def to_dict(self) -> Dict:
        return dict(column=self.column, delta=self.delta, low=self.low, high=self.high,
                    level=self.level, seeds=self.seeds, images=self.images,
                    verdict=self.verdict, detectable=self.detectable, power=self.power)


def image_resamples(pairs: Sequence[Tuple[ImageScores, ImageScores]], resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """The mean over ``pairs`` of the Steps-minus-twin delta on ``resamples``
    bootstrap resamples of the validation images, each resample the same for
    every pair and both twins."""
    ids = pairs[0][0].image_ids
    for steps, twin in pairs:
        for scores in (steps, twin):
            if scores.image_ids != ids:
                other = next((f'{a} vs {b}' for a, b in zip(scores.image_ids, ids)
                              if a != b), f'{scores.num_images} vs {len(ids)} images')
                raise ValueError(
                    f'{scores.column}: runs tested on different images ({other}); '
                    f'a paired delta needs the same validation set for both twins and '
                    f'every seed')
    n = len(ids)
    out = np.empty(resamples)
    for b in range(resamples):
        idx = rng.integers(0, n, n)
        out[b] = np.mean([s.value(idx) - t.value(idx) for s, t in pairs])
    return out


def delta_interval(pairs: Sequence[Tuple[ImageScores, ImageScores]],
                   resamples: int = 1000, level: float = LEVEL,
                   seed: int = 0) -> Interval:
    """The interval of the mean Steps-minus-twin delta over ``pairs`` (one
    ``(steps, twin)`` per seed): images bootstrapped, seeds by Student's t (see
    the module's docstring)."""
    if not pairs:
        raise ValueError('no (steps, twin) pair to compare')
    per_seed = np.array([s.value() - t.value() for s, t in pairs])
    delta, n = float(per_seed.mean()), len(pairs)
    images = image_resamples(pairs, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2
    image_var = images.var(ddof=1)
    seed_var = per_seed.var(ddof=1) / n if n > 1 else 0.0
    dof = degrees_of_freedom(seed_var, image_var, n)
    if n == 1:
        low, high = np.percentile(images, [tail * 100, 100 - tail * 100])
    else:
        from scipy.stats import t as student_t
        half = student_t.ppf(1 - tail, dof) * np.sqrt(seed_var + image_var)
        low, high = delta - half, delta + half
    return Interval(pairs[0][0].column, delta, float(low), float(high), n,
                    pairs[0][0].num_images, level,
                    detectable_effect(seed_var, image_var, dof, level))


def degrees_of_freedom(seed_var: float, image_var: float, seeds: int) -> float:
    """Welch-Satterthwaite: the seeds' variance (of the mean delta) has
    ``seeds - 1`` degrees of freedom, the bootstrap's as many as one likes."""
    if seeds < 2 or seed_var <= 0:
        return np.inf
    return (seeds - 1) * (1 + image_var / seed_var) ** 2


def detectable_effect(seed_var: float, image_var: float, dof: float,
                      level: float = LEVEL, power: float = POWER) -> float:
    """The smallest true delta that the interval of ``delta_interval`` (the
    mean delta's variance ``seed_var + image_var``, Student's t on ``dof``)
    puts wholly above 0 with probability ``power``: the standard error times
    the non-centrality at which that t exceeds its ``1 - (1 - level) / 2``
    quantile with that probability (the normal quantiles' sum where ``dof`` is
    infinite; the chance of the wrong sign's verdict, under 1e-4, is left out)."""
    from scipy.optimize import brentq
    from scipy.stats import nct, norm
    from scipy.stats import t as student_t
    error = float(np.sqrt(seed_var + image_var))
    tail = (1 - level) / 2
    if not np.isfinite(dof) or dof > 1e4:
        return error * float(norm.ppf(1 - tail) + norm.ppf(power))
    critical = student_t.ppf(1 - tail, dof)
    shift = brentq(lambda ncp: nct.sf(critical, dof, ncp) - power, 0.0, 100.0)
    return error * float(shift)


def dump_args(codebase: str, test_dir: str) -> List[str]:
    """The ``mim test`` arguments that write the dump ``read_image_scores`` reads."""
    if codebase == 'mmpretrain':
        return ['--out', osp.join(test_dir, PREDICTIONS_FILE), '--out-item', 'pred']
    if codebase == 'mmdet':
        return ['--out', osp.join(test_dir, PREDICTIONS_FILE)]
    if codebase == 'mmseg':
        return ['--out', osp.join(test_dir, PREDICTIONS_DIR)]
    raise ValueError(f'no prediction dump known for {codebase!r}')


def group_intervals(group, resamples: int = 1000, level: float = LEVEL) -> List[Interval]:
    """The interval of each column of a comparison (``report.seed_groups``: one
    ``PairResult`` per seed) whose runs all left per-image dumps."""
    scores = [(read_image_scores(p.steps.run.test()), read_image_scores(p.baseline.run.test()))
              for p in group]
    columns = [c for c in scores[0][0] if all(c in s and c in t for s, t in scores)]
    return [delta_interval([(s[c], t[c]) for s, t in scores], resamples, level)
            for c in columns]


def attach(tables, resamples: int = 1000, level: float = LEVEL):
    """Fill each table's ``intervals`` (one list per comparison)."""
    from .tables import seed_groups
    for table in tables:
        table.intervals = [group_intervals(g, resamples, level) for g in seed_groups(table)]
    return tables
