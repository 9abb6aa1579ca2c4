"""Per-image scores recompute the stock evaluators' metrics (on all images and on
resamples with repeated images), and the delta's bootstrap interval gives the
verdict the data call for."""
import contextlib
import io
import pickle

import numpy as np
import pytest

from steps_lab.results.intervals import (CocoScores, IoUScores, Top1Scores, coco_scores,
                                         degrees_of_freedom, delta_interval,
                                         detectable_effect, image_resamples, iou_scores,
                                         top1_scores)


# ---- COCO AP against pycocotools ------------------------------------------------
def _scenes(rng, num_images=12, num_classes=3):
    """A COCO ground truth and noisy detections of it (some missed, some false)."""
    images, annotations, detections = [], [], []
    for image_id in range(1, num_images + 1):
        images.append(dict(id=image_id, width=100, height=100, file_name=f'{image_id}.jpg'))
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(10, 40, 2)
            label = int(rng.integers(1, num_classes + 1))
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                    category_id=label, bbox=[x, y, w, h], area=w * h,
                                    iscrowd=0))
            if rng.uniform() < 0.8:  # found, with a jittered box
                jitter = rng.normal(0, 3, 4)
                detections.append(dict(image_id=image_id, category_id=label,
                                       bbox=list(np.array([x, y, w, h]) + jitter),
                                       score=float(rng.uniform(0.3, 1))))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            detections.append(dict(image_id=image_id,
                                   category_id=int(rng.integers(1, num_classes + 1)),
                                   bbox=list(rng.uniform(0, 60, 2)) + [15.0, 15.0],
                                   score=float(rng.uniform(0, 0.9))))
    categories = [dict(id=i, name=str(i)) for i in range(1, num_classes + 1)]
    return dict(images=images, annotations=annotations, categories=categories), detections


def _pycocotools_ap(gt_dict, detections):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(detections), 'bbox')
        evaluator.params.maxDets = [100, 300, 1000]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return 100 * evaluator.stats[0], evaluator


def _scores(gt_dict, detections) -> CocoScores:
    _, evaluator = _pycocotools_ap(gt_dict, detections)
    p = evaluator.params
    n_areas, n_images = len(p.areaRng), len(p.imgIds)
    eval_imgs = [[evaluator.evalImgs[k * n_areas * n_images + i] for i in range(n_images)]
                 for k in range(len(p.catIds))]
    return CocoScores('AP^box', [str(i) for i in p.imgIds], eval_imgs, p.iouThrs,
                      p.recThrs, p.maxDets[-1])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_coco_ap_equals_pycocotools_on_all_images(seed):
    gt, dets = _scenes(np.random.default_rng(seed))
    expected, _ = _pycocotools_ap(gt, dets)
    assert _scores(gt, dets).value() == pytest.approx(expected, abs=1e-9)


def test_coco_ap_on_a_resample_equals_pycocotools_on_the_repeated_images():
    rng = np.random.default_rng(3)
    gt, dets = _scenes(rng)
    scores = _scores(gt, dets)
    indices = rng.integers(0, scores.num_images, scores.num_images)
    assert len(set(indices.tolist())) < len(indices)  # repeats: what a bootstrap draws
    # the resample as a data set of its own: each drawn image a new id
    images, annotations, detections = [], [], []
    for new_id, index in enumerate(indices, 1):
        old_id = int(scores.image_ids[index])
        images.append(dict(gt['images'][old_id - 1], id=new_id))
        annotations += [dict(a, id=len(annotations) + j + 1, image_id=new_id)
                        for j, a in enumerate(x for x in gt['annotations']
                                              if x['image_id'] == old_id)]
        detections += [dict(d, image_id=new_id) for d in dets if d['image_id'] == old_id]
    expected, _ = _pycocotools_ap(dict(gt, images=images, annotations=annotations),
                                  detections)
    assert scores.value(indices) == pytest.approx(expected, abs=1e-9)
    assert scores.value(indices) != pytest.approx(scores.value(), abs=1e-6)


def test_coco_scores_read_mmdet_dumps_and_refuse_a_partial_one(tmp_path):
    import json
    import pickle

    import torch
    gt, dets = _scenes(np.random.default_rng(4))
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(gt))
    rows = []
    for image in gt['images']:  # mmdet's DumpDetResults: xyxy boxes, 0-based labels
        mine = [d for d in dets if d['image_id'] == image['id']]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in mine)]
        rows.append(dict(img_id=image['id'], pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([d['score'] for d in mine]),
            labels=torch.tensor([d['category_id'] - 1 for d in mine], dtype=torch.long))))
    dump = tmp_path / 'predictions.pkl'
    dump.write_bytes(pickle.dumps(rows))
    expected, _ = _pycocotools_ap(gt, dets)
    scores = coco_scores(str(dump), str(ann_file))
    assert set(scores) == {'AP^box'}  # no masks dumped, no AP^mask
    assert scores['AP^box'].value() == pytest.approx(expected, abs=1e-3)  # float32 boxes
    dump.write_bytes(pickle.dumps(rows[1:]))
    with pytest.raises(ValueError, match='no predictions for 1 of the 12 images'):
        coco_scores(str(dump), str(ann_file))


# ---- mIoU against mmseg ---------------------------------------------------------
def test_miou_equals_mmseg_iou_metric_on_its_dumped_pngs(tmp_path):
    import torch
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    from PIL import Image
    rng = np.random.default_rng(0)
    classes = ('background', 'a', 'b', 'c')
    metric = IoUMetric(output_dir=str(tmp_path / 'pred'), keep_results=True)
    metric.dataset_meta = dict(classes=classes)
    gt_dir = tmp_path / 'gt'
    gt_dir.mkdir()
    for i in range(6):
        # the ADE encoding on disk: 0 = ignore, class k stored as k + 1
        stored = rng.integers(0, len(classes) + 1, (16, 16)).astype(np.uint8)
        Image.fromarray(stored).save(gt_dir / f'img{i}.png')
        label = stored.astype(np.int64) - 1
        label[label == -1] = 255
        pred = np.where(rng.uniform(size=label.shape) < 0.6, label,
                        rng.integers(0, len(classes), label.shape))
        pred[pred == 255] = 0
        sample = SegDataSample(metainfo=dict(img_path=f'/x/img{i}.jpg',
                                             reduce_zero_label=True))
        sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred)[None])
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None])
        metric.process([], [sample.to_dict()])
    with contextlib.redirect_stdout(io.StringIO()):
        expected = metric.compute_metrics(metric.results)['mIoU']
    scores = iou_scores(str(tmp_path / 'pred'), str(gt_dir), len(classes),
                        reduce_zero_label=True)
    assert scores.num_images == 6
    assert scores.value() == pytest.approx(expected, abs=0.006)  # mmseg rounds to 0.01


def test_miou_of_a_resample_sums_the_drawn_images_counts():
    intersect = np.array([[1, 0], [3, 2]])
    union = np.array([[2, 0], [4, 4]])
    scores = IoUScores(['x', 'y'], intersect, union)
    # image 'x' has no class-1 pixels: that class is left out, as mmseg's nanmean does
    assert scores.value(np.array([0, 0])) == pytest.approx(50.0)
    assert scores.value(np.array([0, 1, 1])) == pytest.approx(100 * (7 / 10 + 4 / 8) / 2)


# ---- the interval ---------------------------------------------------------------
def _top1(correct):
    return Top1Scores([str(i) for i in range(len(correct))], np.asarray(correct))


def test_a_model_right_on_more_images_is_ahead_and_its_twin_behind():
    rng = np.random.default_rng(0)
    base = rng.uniform(size=200) < 0.6
    better = base | (rng.uniform(size=200) < 0.5)  # right wherever the twin is, and more
    pairs = [(_top1(better), _top1(base))] * 3
    ahead = delta_interval(pairs)
    assert ahead.delta == pytest.approx(100 * (better.mean() - base.mean()))
    assert ahead.low > 0 and ahead.verdict == 'ahead'
    assert ahead.seeds == 3 and ahead.images == 200
    behind = delta_interval([(t, s) for s, t in pairs])
    assert behind.high < 0 and behind.verdict == 'behind'


def test_seeds_that_disagree_widen_the_interval_to_noise():
    rng = np.random.default_rng(1)
    a = rng.uniform(size=200) < 0.6
    b = a | (rng.uniform(size=200) < 0.3)
    one_sign = delta_interval([(_top1(b), _top1(a))] * 3)
    flipped = delta_interval([(_top1(b), _top1(a)), (_top1(a), _top1(b)),
                              (_top1(b), _top1(a))])
    assert one_sign.verdict == 'ahead'
    assert flipped.verdict == 'within noise' and flipped.low < 0 < flipped.high
    assert flipped.high - flipped.low > one_sign.high - one_sign.low


def test_twins_tested_on_different_images_are_refused():
    with pytest.raises(ValueError, match='different images'):
        delta_interval([(_top1([1, 0, 1]), _top1([1, 0]))])


def _top1_dump(path, root, correct):
    rows = [dict(img_path=f'{root}/val/{c}/{i}.jpg', gt_label=np.array([c]),
                 pred_label=np.array([c if ok else 1 - c]))
            for i, (c, ok) in enumerate(zip((0, 1, 0, 1), correct))]
    with open(path, 'wb') as f:
        pickle.dump(rows, f)
    return top1_scores(str(path))


def test_top1_pairs_the_same_images_wherever_the_set_lies(tmp_path):
    """A run that read the data through another path (a link, another mount)
    is paired image by image; another set of the same size is refused."""
    here = _top1_dump(tmp_path / 'a.pkl', '/data/imagenet', [1, 1, 1, 0])
    there = _top1_dump(tmp_path / 'b.pkl', '/mnt/link/imagenet', [1, 0, 1, 0])
    assert here.image_ids == there.image_ids == ['0/0.jpg', '0/2.jpg', '1/1.jpg', '1/3.jpg']
    assert delta_interval([(here, there)]).delta == pytest.approx(25.0)
    other = Top1Scores(['0/9.jpg'] + here.image_ids[1:], np.ones(4, bool))
    with pytest.raises(ValueError, match=r'different images \(0/0.jpg vs 0/9.jpg\)'):
        delta_interval([(other, here)])


def _null_pairs(noise, rng, images=100, seeds=3):
    """Twins equal in expectation, on a fresh validation set: with ``noise=
    'seeds'`` each seed shifts each twin's accuracy (training noise); with
    ``'images'`` every seed gets the same predictions and only the draw of the
    validation images makes one twin look better (test-set noise)."""
    if noise == 'images':
        steps, twin = (_top1(rng.uniform(size=images) < 0.7) for _ in range(2))
        return [(steps, twin)] * seeds
    p = rng.uniform(0.3, 0.9, images)
    return [tuple(_top1(rng.uniform(size=images) < np.clip(p + shift, 0, 1))
                  for shift in rng.normal(0, 0.08, 2)) for _ in range(seeds)]


def _scored_pairs(noise, rng, difference=0.0, images=100, seeds=3):
    """Twins whose per-image scores (Top1Scores averages whatever it is given)
    differ by ``difference`` points in expectation, with noise whose size does
    not depend on it, on a fresh validation set: with ``noise='seeds'`` each
    seed shifts each twin (training noise) and draws its per-image noise; with
    ``'images'`` every seed gets the same scores."""
    base = rng.uniform(0.3, 0.9, images)
    gains = (difference / 100, 0.0)
    if noise == 'images':
        steps, twin = (_top1(base + g + rng.normal(0, 0.3, images)) for g in gains)
        return [(steps, twin)] * seeds
    return [tuple(_top1(base + g + shift + rng.normal(0, 0.3, images))
                  for g, shift in zip(gains, rng.normal(0, 0.08, 2)))
            for _ in range(seeds)]


@pytest.mark.parametrize('noise', ['seeds', 'images'])
def test_a_null_delta_is_called_ahead_or_behind_about_5_percent_of_the_time(noise):
    """A 95% interval's verdict on twins that are equal in expectation is wrong
    about 5% of the time, neither more (a bootstrap over three seeds, or image
    resamples drawn apart for each seed of one validation set: 14% and 27% here)
    nor much less (Student's t on two degrees of freedom for the images' noise
    too: none, and real deltas hidden)."""
    rng = np.random.default_rng(0)
    trials = 200
    wrong = sum(delta_interval(_null_pairs(noise, rng), resamples=300).verdict
                != 'within noise' for _ in range(trials))
    assert 0.01 <= wrong / trials <= 0.10, f'{wrong} of {trials} null deltas called a verdict'


@pytest.mark.parametrize('noise', ['seeds', 'images'])
def test_a_true_difference_of_the_detectable_size_is_called_about_80_percent_of_the_time(
        noise):
    """``detectable``, the smallest difference a comparison would call 80% of
    the time, is what it says: computed from the noise of twins equal in
    expectation (the mean variances their intervals measured), a true
    difference of that size is called ahead in about 80% of fresh comparisons;
    half of it far less often, and never behind."""
    rng = np.random.default_rng(1)
    seed_vars, image_vars = [], []
    for _ in range(300):
        pairs = _scored_pairs(noise, rng)
        per_seed = np.array([s.value() - t.value() for s, t in pairs])
        seed_vars.append(per_seed.var(ddof=1) / len(pairs))
        image_vars.append(image_resamples(pairs, 300, rng).var(ddof=1))
    seed_var, image_var = float(np.mean(seed_vars)), float(np.mean(image_vars))
    size = detectable_effect(seed_var, image_var,
                             degrees_of_freedom(seed_var, image_var, 3))
    # 2.80 standard errors on the images' noise alone; up to 5.65 on two
    # degrees of freedom where three seeds' spread dominates
    errors = size / np.sqrt(seed_var + image_var)
    if noise == 'images':
        assert errors == pytest.approx(2.80, abs=0.01)
    else:
        assert 2.80 < errors < 5.65
    trials = 250
    verdicts = [delta_interval(_scored_pairs(noise, rng, difference=size),
                               resamples=300).verdict for _ in range(trials)]
    called = verdicts.count('ahead') / trials
    assert 0.70 <= called <= 0.90, f'{called:.0%} of differences of {size:.1f} called'
    assert 'behind' not in verdicts
    half = [delta_interval(_scored_pairs(noise, rng, difference=size / 2),
                           resamples=300).verdict for _ in range(100)]
    assert half.count('ahead') / 100 < 0.5


def test_every_interval_says_what_it_could_detect():
    rng = np.random.default_rng(2)
    interval = delta_interval(_scored_pairs('seeds', rng))
    assert interval.detectable > interval.high - interval.delta > 0
    assert interval.to_dict()['detectable'] == interval.detectable
    assert interval.to_dict()['power'] == 0.8
    one_seed = delta_interval(_scored_pairs('images', rng, seeds=1))
    # the images' noise alone: 2.80 standard errors, wider than the 1.96 half-width
    assert one_seed.detectable > (one_seed.high - one_seed.low) / 2
