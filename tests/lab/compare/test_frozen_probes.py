"""The frozen-backbone probes (``steps_lab.compare.frozen_probes``): the boxes they
classify, the pooling at each stage's stride, the linear probes and their scores;
and the tool on a real chain's pretrained backbone (slow)."""
import glob
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from steps_lab.compare import frozen_probes


def test_one_background_box_per_object_of_its_size_away_from_every_object(demo_data):
    ann = osp.join(demo_data, 'coco', 'annotations', 'instances_val2017.json')
    files, rois, labels = frozen_probes.probe_boxes(ann)
    coco = json.load(open(ann))
    assert len(files) == len(coco['images']) and all(osp.exists(f) for f in files)
    assert (labels > 0).sum() == len(coco['annotations'])
    assert sorted(labels[labels > 0]) == sorted(a['category_id'] for a in coco['annotations'])
    assert (labels == 0).sum() == (labels > 0).sum()  # none failed to find a place
    objects, backgrounds = rois[labels > 0], rois[labels == 0]
    size = lambda r: r[:, 3:5] - r[:, 1:3]  # noqa: E731
    np.testing.assert_allclose(size(backgrounds), size(objects), atol=1e-4)
    for roi in backgrounds:
        same_image = objects[objects[:, 0] == roi[0], 1:]
        assert frozen_probes._iou(roi[1:], same_image).max() < frozen_probes.BACKGROUND_IOU


def test_boxes_are_pooled_at_each_maps_stride():
    """A map whose value is its x coordinate in image pixels: a box pools to its
    centre's x at every stride (a wrong spatial scale shifts it)."""
    image_size, maps = 128, []
    for stride in (4, 8, 16, 32):
        n = image_size // stride
        x = (torch.arange(n, dtype=torch.float32) + 0.5) * stride
        maps.append(x.expand(1, 2, n, n).contiguous())
    rois = np.array([[0, 32, 40, 96, 80], [0, 24, 8, 56, 24]], dtype=np.float32)
    for feature in frozen_probes.pooled(maps, rois, image_size):
        np.testing.assert_allclose(feature[:, 0].numpy(), [64, 40], atol=1e-4)


def test_linear_probe_and_its_miou():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 3, 300))
    x = torch.nn.functional.one_hot(y, 3).float() * 4 + torch.randn(300, 3)
    predict = frozen_probes.fit_linear(x, y, 3)
    assert (predict(x) == y).float().mean() > 0.95
    truth = torch.tensor([0, 0, 1, 1, 2, -1])
    assert frozen_probes.miou(torch.tensor([0, 0, 1, 1, 2, 0]), truth, 3) == 100
    assert frozen_probes.miou(torch.tensor([0, 1, 1, 1, 2, 2]), truth, 3) == \
        pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 3)


def test_labels_are_taken_at_the_centres_of_the_maps_cells():
    labels = torch.arange(16).reshape(1, 4, 4)
    assert frozen_probes.at_resolution(labels, 2).tolist() == [[[5, 7], [13, 15]]]


@pytest.mark.slow
def test_probes_of_a_pretrained_backbone_on_the_chain(steps_chain, demo_data):
    config, = glob.glob(osp.join(steps_chain['det'].job_dir, '*.py'))
    result = frozen_probes.probe_backbone(config, demo_data)
    assert len(result['box']) == len(result['pixel']) == 4
    assert all(0 <= v <= 100 for v in result['box'] + result['pixel'])


def test_the_tool_names_the_run_it_needs(tmp_path):
    done = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'frozen_probes.py'),
                           '--model', 'swin-t', '--work-dir', str(tmp_path), '--out',
                           str(tmp_path / 'out')], capture_output=True, text=True)
    assert done.returncode == 1
    assert 'no Mask R-CNN config of Steps-Swin-T (seed 0)' in done.stderr
    assert '--compare --model swin-t' in done.stderr
