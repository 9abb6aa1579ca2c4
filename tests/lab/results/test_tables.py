"""The results tool on real work dirs: the demo's chain (``steps_chain``,
``baseline_chain``: ``mim train`` / ``mim test`` at test size) read back, twins paired,
tables with every figure traced to its file, refusal of a run without a test
result, and the model index's results."""
import csv
import glob
import json
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

from conftest import ROOT
from steps_mm.analysis import model_index as index
from steps_lab.results import ResultsError, build_tables, intervals, read_run, twins
from steps_lab.results.metafile import unmeasured, write_results

SIZES = ['--input-size', 'mmpretrain=32x32', '--input-size', 'mmdet=64x64',
         '--input-size', 'mmseg=64x64']


def results_table(*args):
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'results_table.py'),
                           *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def shipped(pattern='**/*.py'):
    return sorted(glob.glob(osp.join(ROOT, 'configs', pattern), recursive=True))


# ---- the twin relation on the shipped configs --------------------------------------
@pytest.mark.slow
def test_every_shipped_steps_config_pairs_with_its_baseline_twin():
    configs = {path: Config.fromfile(path, import_custom_modules=False)
               for path in shipped()}
    pairs, unpaired = twins.pair(list(configs), configs.get)
    assert not unpaired, [osp.relpath(p, ROOT) for p in unpaired]
    named = {osp.relpath(s, ROOT): osp.relpath(b, ROOT) for s, b in pairs}
    assert named['configs/steps_convnext_maskrcnn.py'] == 'configs/convnext_maskrcnn.py'
    assert named['configs/steps_convnext_upernet.py'] == 'configs/convnext_upernet.py'
    assert named['configs/imagenet/steps-convnext-tiny_32xb128_in1k.py'] == \
        'configs/imagenet/convnext-tiny_32xb128_in1k.py'
    # the Swin-T pairs of two schedules pair by schedule
    assert named['configs/mask-rcnn_steps-swin-t-p4-w7_fpn_1x_coco.py'] == \
        'configs/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
    for steps, baseline in pairs:
        assert twins.layout(configs[steps]) == 'steps'
        assert twins.layout(configs[baseline]) == 'sequential'
        # the shipped det/seg baselines start from the stock ImageNet weights, the
        # Steps configs from their own pretraining: flagged, nothing else
        assert set(twins.differences(configs[steps], configs[baseline])) <= {
            'backbone initialisation (own pretraining vs stock weights)'}


# ---- the tables from the demo's work dirs ------------------------------------------
@pytest.fixture(scope='module')
def tables_out(steps_chain, baseline_chain, tmp_path_factory):
    """``tools/results_table.py`` over both chains' job dirs."""
    out = tmp_path_factory.mktemp('results')
    dirs = [run.job_dir for chain in (steps_chain, baseline_chain)
            for run in chain.values()]
    done = results_table(*dirs, *SIZES, '--out', out)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / 'results.json') as f:
        return json.load(f), out, done.stdout


@pytest.mark.slow
def test_pairs_twins_trained_like_for_like(tables_out, steps_chain, baseline_chain):
    tables, _, stdout = tables_out
    by_task = {t['task']: t for t in tables}
    for task, stage in (('Image Classification', 'pretrain'),
                        ('Instance Segmentation', 'det')):
        table = by_task[task]
        assert len(table['pairs']) == 1 and not table['unpaired']
        pair = table['pairs'][0]
        assert pair['like_for_like'], pair['differences']
        assert pair['steps']['model'] == 'Steps-ConvNeXt-T'
        assert pair['baseline']['model'] == 'ConvNeXt-T'
        assert pair['steps']['work_dir'] == steps_chain[stage].job_dir
        assert pair['baseline']['work_dir'] == baseline_chain[stage].job_dir
    assert 'warning' not in stdout.split('### Semantic')[0]
    # the Steps UperNet has no twin among the dirs: shown alone, with a warning
    seg = by_task['Semantic Segmentation']
    assert not seg['pairs'] and seg['unpaired'][0]['model'] == 'Steps-ConvNeXt-T'
    assert 'has no twin' in seg['warnings'][0]


@pytest.mark.slow
def test_every_figure_is_traced_to_its_test_result_and_checkpoint(
        tables_out, steps_chain, baseline_chain):
    tables, out, stdout = tables_out
    det = next(t for t in tables if t['task'] == 'Instance Segmentation')['pairs'][0]
    for side, chain in (('steps', steps_chain), ('baseline', baseline_chain)):
        figures = det[side]['figures']
        test = read_run(chain['det'].job_dir).test()
        with open(figures['AP^box']['source']) as f:
            dumped = json.load(f)
        assert figures['AP^box']['source'] == test.metrics_file
        assert figures['AP^box']['value'] == pytest.approx(100 * dumped['coco/bbox_mAP'])
        assert figures['AP^mask']['value'] == pytest.approx(100 * dumped['coco/segm_mAP'])
        assert figures['AP^box']['checkpoint'] == chain['det'].checkpoint
        assert figures['img/s']['value'] > 0
        assert figures['params']['value'] > 1e6 and figures['flops']['value'] > 0
    assert det['delta']['AP^box'] == pytest.approx(
        det['steps']['figures']['AP^box']['value']
        - det['baseline']['figures']['AP^box']['value'])
    with open(out / 'results.csv') as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r['source'] for r in rows)
    measured = [r for r in rows if r['column'] in ('top-1', 'AP^box', 'AP^mask', 'mIoU')
                and r['role'] != 'delta']
    assert len(measured) == 2 + 4 + 1 and all(r['checkpoint'] for r in measured)
    assert '| delta (Steps − baseline) |' in stdout
    assert 'GMACs @64x64' in stdout


@pytest.mark.slow
def test_refuses_a_work_dir_without_a_test_result(steps_chain, tmp_path):
    train_only = steps_chain['det'].train_dir  # mim train's dir, without mim test
    done = results_table(steps_chain['pretrain'].job_dir, train_only, '--no-flops')
    assert done.returncode == 1
    assert f'{train_only}: no test result' in done.stderr
    assert 'mim test mmdet' in done.stderr  # how to make one
    with pytest.raises(ResultsError, match='no mmengine session'):
        read_run(str(tmp_path))


# ---- per-image dumps and the delta's interval ----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize('stage, expected', [
    ('pretrain', {'top-1': ('accuracy/top1', 1, 0)}),  # float32 in the log: rel=1e-6
    # mmdet logs AP with 3 decimals, mmseg mIoU with 2
    ('det', {'AP^box': ('coco/bbox_mAP', 100, 0.051), 'AP^mask': ('coco/segm_mAP', 100, 0.051)}),
    ('seg', {'mIoU': ('mIoU', 1, 0.0051)})])
def test_the_dumps_of_mim_test_recompute_its_metrics(stage, expected, steps_chain,
                                                     demo_data):
    test = read_run(steps_chain[stage].job_dir).test()
    scores = intervals.read_image_scores(test)
    assert set(scores) == set(expected)
    for column, (key, scale, tolerance) in expected.items():
        assert scores[column].num_images == (12 if stage == 'pretrain' else 4)
        assert scores[column].value() == pytest.approx(scale * test.metrics[key],
                                                       rel=1e-6, abs=tolerance)


@pytest.mark.slow
def test_compare_summary_has_intervals_per_metric(steps_chain, baseline_chain, tmp_path):
    from steps_lab.demo.chain import PAIRS
    from steps_lab.compare import side_by_side as compare
    from conftest import small_recipe
    steps, twin = PAIRS['convnext-t']
    result = compare.Comparison('convnext-t', [0], small_recipe(), job_dirs={
        steps.name: {0: [r.job_dir for r in steps_chain.values()]},
        twin.name: {0: [r.job_dir for r in baseline_chain.values()]}})
    data = compare.summary(compare.build(result, resamples=50), 'cmd')
    # the twin has no UperNet here: no mIoU comparison
    assert [i['column'] for i in data['intervals']] == ['top-1', 'AP^box', 'AP^mask']
    for interval in data['intervals']:
        assert interval['low'] <= interval['delta'] <= interval['high']
        assert interval['seeds'] == 1 and interval['verdict'] in intervals.VERDICTS
        # one seed: the images' noise alone, 2.80 of its errors, past the 1.96 half-width
        assert interval['detectable'] > (interval['high'] - interval['low']) / 2 > 0
    row = data['per_seed'][0]
    assert row['seed'] == 0 and row[twin.name]['AP^box']['images'] == 4
    # nor per-seed figures: a run without its twin is not part of the comparison
    assert 'mIoU' not in row[steps.name] and 'mIoU' not in row[twin.name]
    assert row[steps.name]['top-1']['images'] == 12
    assert data['mean_std'][steps.name]['top-1']['std'] == 0
    paths = compare.write_summary(data, str(tmp_path), 'convnext-t')
    assert json.load(open(paths['json']))['intervals'] == data['intervals']
    assert osp.getsize(paths['png']) > 10000
    table = compare.verdict_table(data)
    rows, note = table.split('\n\n')
    assert len(rows.splitlines()) == 2 + len(data['intervals'])
    assert note.startswith('One seed: the interval covers the validation images only')
    assert '| AP^box |' in table and '1 × 4 |' in table
    assert '| detectable (80%) |' in table.splitlines()[0]


# ---- the model index -------------------------------------------------------------
@pytest.mark.slow
def test_writes_measured_results_into_a_model_index(steps_chain, baseline_chain,
                                                     tmp_path):
    runs = [read_run(chain['det'].job_dir) for chain in (steps_chain, baseline_chain)]
    tables = build_tables(runs)
    before = open(index.METAFILE).read()
    # the built-in data are no COCO: the package's index refuses them
    with pytest.raises(ResultsError, match='takes results on COCO only'):
        write_results(tables)
    assert open(index.METAFILE).read() == before
    copy = tmp_path / 'metafile.yml'
    shutil.copy(index.METAFILE, copy)
    assert write_results(tables, str(copy)) == ['convnext_maskrcnn',
                                                'steps_convnext_maskrcnn']
    entries = index.read_entries(str(copy))
    result = entries['steps_convnext_maskrcnn']['Results'][-1]
    test = runs[0].test()
    assert result['Metrics']['box AP'] == round(100 * test.metrics['coco/bbox_mAP'], 2)
    assert result['Source'] == test.metrics_file
    assert result['Checkpoint'] == steps_chain['det'].checkpoint
    # mim search reads it: Dataset/metric columns
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    frame = convert2df(load(str(tmp_path / 'model-index.yml')))
    column = [c for c in frame.columns if c.endswith('/box_ap')]
    assert len(column) == 1
    assert frame.loc['steps_convnext_maskrcnn', column[0]] == result['Metrics']['box AP']


def test_the_committed_index_carries_only_measured_results():
    assert unmeasured(index.read_entries()) == []


def test_unmeasured_flags_numbers_without_a_source():
    entry = {'Results': [{'Task': 'Instance Segmentation', 'Dataset': 'COCO',
                          'Metrics': {'box AP': 46.0}}]}
    assert unmeasured({'x': entry}) == ['x: metrics without a Source and a Checkpoint']
    entry['Results'][0].update(Source='a.json', Checkpoint='epoch_36.pth',
                               Dataset='CocoDataset at data/coco/')
    assert unmeasured({'x': entry}) == [
        'x: Instance Segmentation results on CocoDataset at data/coco/']


def test_results_replace_only_their_own_task_and_dataset(tmp_path):
    """``put_results`` and ``write``: a run's results take the place of the
    entry's results on the same task and dataset and keep the others; the
    ``model-index.yml`` written beside the metafile imports it, and mim reads it."""
    entries = index.read_entries()
    name = 'steps_convnext_maskrcnn'
    other = {'Task': 'Instance Segmentation', 'Dataset': 'LVIS', 'Metrics': {'box AP': 1.}}
    entries[name]['Results'].append(other)
    coco = {'Task': 'Instance Segmentation', 'Dataset': 'COCO',
            'Metrics': {'box AP': 46.3, 'mask AP': 41.7}, 'Source': 'test.json',
            'Checkpoint': 'epoch_36.pth'}
    index.put_results(entries, name, [coco])
    path = str(tmp_path / 'metafile.yml')
    index.write(list(entries.values()), path)
    written = index.read_entries(path)
    assert written[name]['Results'] == [other, coco]
    assert written.keys() == entries.keys()
    assert open(tmp_path / 'model-index.yml').read().endswith('Import:\n  - metafile.yml\n')
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    frame = convert2df(load(str(tmp_path / 'model-index.yml')))
    column = [c for c in frame.columns if c.lower() == 'coco/box_ap']
    assert len(column) == 1 and frame.loc[name, column[0]] == 46.3
