"""The built-in dataset and the overrides that train the shipped configs on it."""
from .config import codebase_of, write_demo_config
from .data import build_demo_datasets

__all__ = ['build_demo_datasets', 'codebase_of', 'write_demo_config']
