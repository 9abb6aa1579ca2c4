"""The built-in data's builds: a build of other sizes replaces the files and the
stamp that describes them, so a later build of the first sizes builds again."""
import os.path as osp

from steps_lab.demo.data import (build_classification_dataset, build_demo_datasets,
                                 data_stamp)


def test_a_build_of_other_sizes_leaves_no_stamp_of_the_first(tmp_path):
    root = str(tmp_path)
    build_demo_datasets(root, num_train=2, num_val=1, size=32)
    first = data_stamp(root)
    build_demo_datasets(root, num_train=1, num_val=1, size=32)
    assert data_stamp(root) != first and not osp.exists(first)
    build_demo_datasets(root, num_train=2, num_val=1, size=32)  # built again
    assert len(list(tmp_path.glob('coco/train2017/*.jpg'))) == 2
    imagenet = build_classification_dataset(root, num_train=1, num_val=1, size=32)
    stamp = data_stamp(imagenet)
    build_classification_dataset(root, num_train=2, num_val=1, size=32)
    assert not osp.exists(stamp) and data_stamp(imagenet).endswith('-2-1-32-1')
    assert data_stamp(str(tmp_path / 'absent')) is None
