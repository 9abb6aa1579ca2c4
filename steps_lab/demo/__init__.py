"""The built-in datasets and the overrides that train the shipped configs on them."""
from .config import codebase_of, write_demo_config, write_pretrain_config
from .data import build_classification_dataset, build_demo_datasets

__all__ = ['build_classification_dataset', 'build_demo_datasets', 'codebase_of',
           'write_demo_config', 'write_pretrain_config']
