"""GPU-only checks (skipped without CUDA): AMP through AutoAmpOptimWrapper, and
fp16 autocast of every backbone family close to fp32."""
import pytest
import torch
from mmengine.optim import AmpOptimWrapper

from steps_mm.engine import AutoAmpOptimWrapper
from steps_mm.models import BACKBONES, StepsImageClassifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')

#: every family at its default arch
FAMILIES = [{'type': cls.__name__, cls.arch_arg: cls.default_arch()} for cls in BACKBONES]


@pytest.mark.parametrize('backbone', FAMILIES, ids=lambda b: b['type'])
def test_amp_training_steps(backbone):
    torch.manual_seed(0)
    model = StepsImageClassifier(dict(backbone, drop_path_rate=0.), 10).cuda()
    wrapper = AutoAmpOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-4), loss_scale='dynamic')
    assert isinstance(wrapper, AmpOptimWrapper)
    images = torch.randn(8, 3, 224, 224, device='cuda')
    labels = torch.arange(8, device='cuda') % 10
    losses = []
    for _ in range(15):  # the dynamic loss scale may skip the first steps
        with wrapper.optim_context(model):
            logits = model(images)
        assert logits.dtype == torch.float16  # autocast is on
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        wrapper.update_params(loss)
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < losses[0], losses  # it fits a fixed batch
    assert wrapper.loss_scaler.get_scale() > 0


@pytest.mark.parametrize('backbone', FAMILIES, ids=lambda b: b['type'])
def test_fp16_autocast_close_to_fp32(backbone):
    torch.manual_seed(0)
    model = StepsImageClassifier(backbone, 1000).cuda().eval()
    images = torch.randn(4, 3, 224, 224, device='cuda')
    with torch.no_grad():
        ref = model(images)
        with torch.autocast('cuda', dtype=torch.float16):
            out = model(images).float()
    assert torch.isfinite(out).all()
    # fp16 keeps ~3 significant digits; over tens of blocks the relative error of
    # the logits stays well under 1%
    assert ((out - ref).norm() / ref.norm()).item() < 1e-2
