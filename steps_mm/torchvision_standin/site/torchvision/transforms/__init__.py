"""Capitalised names are transform classes that raise when used; nothing is listed
by ``dir()``, so mmpretrain registers no torchvision transforms."""
from . import functional, transforms  # noqa: F401
from .transforms import InterpolationMode  # noqa: F401


def __getattr__(name: str):
    if not name[:1].isupper():
        raise AttributeError(name)

    class Unavailable:
        def __init__(self, *args, **kwargs):
            raise ImportError(f'torchvision.transforms.{name} needs the real '
                              f'torchvision; install it (pip install torchvision)')

    Unavailable.__name__ = Unavailable.__qualname__ = name
    return Unavailable
