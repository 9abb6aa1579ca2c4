"""SimpleFeaturePyramid: the ViTDet neck that builds strides 4-64 from one map."""
import pytest
import torch

from steps_mm.models import SimpleFeaturePyramid, StepsViT


def test_strides_and_channels_from_a_stride_16_map():
    """A 64x96 image through a patch-16 ViT is a 4x6 map: the neck gives strides
    4, 8, 16, 32 and Mask R-CNN's extra stride-64 level, 256 channels each."""
    vit = StepsViT('deit-tiny', layout='steps', img_size=(64, 96), out_indices=(-1, ))
    neck = SimpleFeaturePyramid(in_channels=[192], out_channels=256,
                                norm_cfg=dict(type='BN'))
    outs = neck(vit(torch.randn(2, 3, 64, 96)))
    assert [tuple(o.shape) for o in outs] == [
        (2, 256, 16, 24), (2, 256, 8, 12), (2, 256, 4, 6), (2, 256, 2, 3),
        (2, 256, 1, 2)]
    # the branches: C/4 after two deconvs, C/2 after one, C, C after the pool
    assert [lat.conv.in_channels for lat in neck.lateral_convs] == [48, 96, 192, 192]
    # a norm between the two deconvolutions of stride 4, and after every conv
    assert isinstance(neck.resample[0][1], torch.nn.BatchNorm2d)
    assert all(m.norm is not None for m in list(neck.lateral_convs) + list(neck.fpn_convs))


def test_hand_checked_small_case():
    """Two input channels, one output channel, no norm: the deconvolution of weight
    1 copies each pixel's channel sum into its 2x2 block; the 2x2 max pool takes
    each channel's maximum; the 1x1 lateral convs weigh the channels (1 and
    [1, -1]); the 3x3 convs are identities; the extra level subsamples."""
    neck = SimpleFeaturePyramid(in_channels=2, out_channels=1, scales=(2, .5),
                                num_outs=3, norm_cfg=None, init_cfg=None)
    with torch.no_grad():
        for p in neck.parameters():
            p.zero_()
        neck.resample[0][0].weight.fill_(1.)  # (in 2, out 1, 2, 2)
        neck.lateral_convs[0].conv.weight.fill_(1.)
        neck.lateral_convs[1].conv.weight.copy_(torch.tensor([1., -1.]).view(1, 2, 1, 1))
        for fpn in neck.fpn_convs:
            fpn.conv.weight[0, 0, 1, 1] = 1.
    x = torch.tensor([[[1., 2.], [3., 4.]], [[10., 20.], [30., 40.]]])[None]
    up, down, extra = neck(x)
    torch.testing.assert_close(up[0, 0], torch.tensor(
        [[11., 11., 22., 22.], [11., 11., 22., 22.],
         [33., 33., 44., 44.], [33., 33., 44., 44.]]))
    torch.testing.assert_close(down, torch.tensor([[[[4. - 40.]]]]))
    torch.testing.assert_close(extra, down)  # a 1x1 map subsampled by 2
    # a tuple of backbone outputs: the last one is used
    torch.testing.assert_close(neck((torch.zeros(1, 2, 3, 3), x))[0], up)


def test_resolves_from_mmdets_registry():
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    assert MODELS.get('SimpleFeaturePyramid') is SimpleFeaturePyramid
    neck = MODELS.build(dict(type='SimpleFeaturePyramid', in_channels=[384],
                             out_channels=256, norm_cfg=dict(type='SyncBN')))
    assert type(neck.fpn_convs[0].norm).__name__ == 'SyncBatchNorm'


@pytest.mark.parametrize('kwargs', [dict(scales=(8, 1)), dict(scales=()),
                                    dict(num_outs=3)])
def test_refuses_what_it_cannot_build(kwargs):
    with pytest.raises(ValueError, match='SimpleFeaturePyramid'):
        SimpleFeaturePyramid(in_channels=8, **kwargs)
