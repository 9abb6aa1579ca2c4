"""Weight selection at the demo's scale (``steps_lab.compare.from_twin``,
``tools/selection_demo.py``): the Steps classifier it writes from a twin's
pretraining, and the study run through the stock tools on a finished chain."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, small_recipe
from steps_lab.demo.chain import PAIRS, ChainRecipe, stage_config
from steps_lab.compare.from_twin import classifier_checkpoint

STEPS, TWIN = PAIRS['convnext-t']


def state(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


@pytest.fixture(scope='module')
def twin_classifier(demo_data, tmp_path_factory):
    """A ConvNeXt-T classifier checkpoint (at its own init) as mmpretrain writes
    one, and the Steps model's generated pretraining config."""
    root = tmp_path_factory.mktemp('from_twin')
    twin_cfg = stage_config(TWIN, 'pretrain', demo_data, str(root / 'twin'),
                            ChainRecipe(), 0)
    twin = classifier_checkpoint(twin_cfg, str(root / 'twin.pth'))
    assert 'own init' in twin
    steps_cfg = stage_config(STEPS, 'pretrain', demo_data, str(root / 'steps'),
                             ChainRecipe(), 0)
    return str(root / 'twin.pth'), steps_cfg, root


def test_selected_classifier_takes_its_backbone_by_selection_and_the_twins_head(
        twin_classifier):
    twin_file, steps_cfg, root = twin_classifier
    line = classifier_checkpoint(steps_cfg, str(root / 'selected.pth'), twin_file)
    assert 'select_from_twin Steps-ConvNeXt-T' in line and '2 head/neck tensors copied' in line
    twin, selected = state(twin_file), state(root / 'selected.pth')
    for key in ('head.fc.weight', 'head.fc.bias', 'backbone.downsample_layers.0.0.weight'):
        assert torch.equal(selected[key], twin[key]), key
    # stage 2's first step: 6 blocks of width 192 from the twin's 9 of width 384;
    # its block j takes the twin's block (2j + 1) * 9 // 12: 0 -> 0, 1 -> 2
    for own, source in (('2.0', '2.0'), ('2.1', '2.2')):
        key = f'backbone.stages.{own}.pointwise_conv2.weight'
        assert selected[key].shape == (192, 768)
        assert torch.equal(selected[key],
                           twin[f'backbone.stages.{source}.pointwise_conv2.weight'][:192, :768])
    random = classifier_checkpoint(steps_cfg, str(root / 'random.pth'))
    assert 'own init' in random
    assert not torch.equal(state(root / 'random.pth')['head.fc.weight'], twin['head.fc.weight'])


def test_the_selected_checkpoint_is_what_the_fine_tuning_backbone_loads(twin_classifier):
    from mmengine.config import Config
    from mmdet.registry import MODELS
    twin_file, steps_cfg, root = twin_classifier
    classifier_checkpoint(steps_cfg, str(root / 'selected.pth'), twin_file)
    cfg = Config.fromfile(osp.join(ROOT, STEPS.det))
    backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=dict(
        type='Pretrained', prefix='backbone.', checkpoint=str(root / 'selected.pth'))))
    backbone.init_weights()
    key = 'stages.2.1.pointwise_conv2.weight'
    assert torch.equal(backbone.state_dict()[key], state(root / 'selected.pth')['backbone.' + key])


def test_a_twin_of_other_classes_is_refused(twin_classifier):
    twin_file, steps_cfg, root = twin_classifier
    ckpt = torch.load(twin_file, weights_only=False)
    ckpt['state_dict']['head.fc.weight'] = torch.zeros(5, 768)
    torch.save(ckpt, root / 'other_classes.pth')
    with pytest.raises(ValueError, match=r'head.fc.weight \(5, 768\) does not fit the Steps '
                       r'classifier \(3, 768\).*same classes'):
        classifier_checkpoint(steps_cfg, str(root / 'x.pth'), str(root / 'other_classes.pth'))


def test_the_tool_names_the_comparison_it_needs(tmp_path):
    done = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'selection_demo.py'),
                           '--compare-dir', str(tmp_path), '--model', 'swin-t', '--seeds',
                           '1'], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1
    assert ('no Swin-T pretraining (seed 1)' in done.stderr
            and 'tools/demo.py --compare --model swin-t --seeds 1' in done.stderr)


@pytest.mark.slow
def test_the_study_on_a_finished_chain(steps_chain, baseline_chain, demo_data, tmp_path):
    """The study's pretraining arms on the chain fixtures laid out as a
    comparison's work dir (seed 0: the Steps model and its twin)."""
    from steps_lab.compare import from_twin
    compare = tmp_path / 'compare'
    (compare / 'seed0').mkdir(parents=True)
    os.symlink(demo_data, compare / 'data')
    os.symlink(osp.dirname(steps_chain['pretrain'].job_dir), compare / 'seed0' / 'steps')
    os.symlink(osp.dirname(baseline_chain['pretrain'].job_dir),
               compare / 'seed0' / 'baseline')
    lines = []
    study = from_twin.run_selection('convnext-t', str(compare), str(tmp_path / 'study'),
                                    small_recipe(), [0], stages=(), echo=lines.append)
    assert any('seed 0: selected: top-1' in line for line in lines)
    pretrained = study.job_dirs[0]['selected+pretrained']['pretrain']
    selected = osp.join(study.job_dirs[0]['selected']['pretrain'], 'epoch_0.pth')
    with open(osp.join(pretrained, 'train.log')) as f:
        assert f'Load checkpoint from {selected}' in f.read()
    data = from_twin.summary(study, str(compare))
    row = data['per_seed'][0]
    assert set(row) == {'seed', *from_twin.ARMS, *from_twin.REFERENCES}
    assert all(row[start]['top-1']['images'] == 12 for start in data['starts'])
    assert {(d['start'], d['against'], d['column']) for d in data['deltas']} == {
        (a, r, 'top-1') for a, r in from_twin.DELTAS}
    paths = from_twin.write_selection_summary(data, str(tmp_path / 'out'),
                                              'convnext-t_selection')
    assert json.load(open(paths['json']))['seeds'] == [0] and osp.exists(paths['png'])
    assert 'selected+pretrained | own pretraining' in from_twin.delta_table(data)
