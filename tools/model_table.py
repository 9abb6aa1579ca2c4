#!/usr/bin/env python
"""The README's model table: every shipped det/seg config with its backbone, layout,
how its backbone is initialised, whole-model parameters, and the backbone's
parameters and FLOPs (MACs) at 224x224 with a 1000-class head (the paper's Table 1
convention), as Markdown.

    python tools/model_table.py [--out models.md]
"""
import argparse
import glob
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


def initialisation(init_cfg) -> str:
    """How the backbone starts: its own ImageNet run, or the stock weights."""
    name = osp.basename(init_cfg['pretrain_config'])
    link = f'[{name[:-3]}]({init_cfg["pretrain_config"]})'
    if '://' in init_cfg['checkpoint']:
        return f'stock ImageNet weights (or {link})'
    return f'ImageNet run of {link}'


def describe(config: str) -> str:
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from steps_mm.analysis import count_flops, count_params
    from steps_mm.analysis import table1_classifier

    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    init = initialisation(cfg.model.backbone.init_cfg)
    backbone = dict(cfg.model.backbone, init_cfg=None)
    cfg.model.backbone = backbone
    model = MODELS.build(cfg.model)
    classifier = table1_classifier(backbone)
    arch = backbone.get('arch', backbone.get('depth'))
    return (f'| [{osp.basename(config)}](configs/{osp.basename(config)}) | '
            f'{backbone["type"]} {arch} | {backbone.get("layout", "steps")} | '
            f'{init} | '
            f'{count_params(model) / 1e6:.1f} | {count_params(classifier) / 1e6:.1f} | '
            f'{count_flops(classifier) / 1e9:.2f} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args()
    configs = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')))
    lines = ['| config | backbone | layout | backbone initialised from | '
             'model params (M) | backbone params (M) | backbone FLOPs @224 (G) |',
             '|---|---|---|---|---|---|---|']
    for i, config in enumerate(configs, 1):
        start = time.time()
        lines.append(describe(config))
        print(f'[{i}/{len(configs)}] {osp.basename(config)} '
              f'({time.time() - start:.1f}s)', file=sys.stderr, flush=True)
    print('\n'.join(lines))
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
