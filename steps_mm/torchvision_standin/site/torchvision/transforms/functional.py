def pil_to_tensor(pic):
    raise ImportError('torchvision.transforms.functional.pil_to_tensor needs the '
                      'real torchvision; install it (pip install torchvision)')
