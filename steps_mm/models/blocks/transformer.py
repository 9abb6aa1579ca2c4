"""The pre-norm Transformer block of ViT / DeiT on tokens (B, N, C), named as in
mmpretrain's ``VisionTransformer`` (``ln1``, ``attn.{qkv,proj}``, ``ln2``,
``ffn.layers.{0.0,1}``), so mmpretrain's DeiT checkpoints map by name."""
import torch
import torch.nn as nn

from ..layers import FFN, DropPath, attention
from ..steps import ResidualBlock

# FX leaf: its kernel choice reads the tensors, which FX tracing does not have
torch.fx.wrap('attention')


class MultiheadSelfAttention(nn.Module):
    """Global multi-head self-attention with a fused qkv projection and the
    fused attention kernel (``layers.attention``)."""

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if num_heads <= 0 or embed_dims % num_heads:
            raise ValueError(f'{type(self).__name__}: num_heads={num_heads} must '
                             f'divide the width {embed_dims}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B, heads, N, C/heads
        return self.proj(attention(q, k, v).transpose(1, 2).reshape(B, N, C))


class PreNormBlock(ResidualBlock):
    """The two-residual pre-norm block of ViT and Swin: ``y = x + a(x)``, then
    ``y + m(y)``, with ``a`` the attention branch and ``m`` the MLP branch
    (their norms and drop path included); subclasses define the two branches.

    ``residual(x) = a + m(x + a)`` exactly, so ``x + residual(x)`` is the block
    and the parallel layout sums whole blocks; ``forward`` adds as ViT and Swin
    do (``(x + a) + m``), in place into the branches' fresh outputs (their last
    ops' backward does not read them): two allocations fewer a block.
    """

    layer_count = 5  # the paper's count for a Transformer block

    def attention_branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.attention_branch(x)
        return attn + self.mlp_branch(x + attn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.attention_branch(x)
        mid += x
        out = self.mlp_branch(mid)
        out += mid
        return out


class TransformerBlock(PreNormBlock):
    """LN, attention, residual; LN, MLP, residual; drop path on each branch.

    Args:
        embed_dims: the width C of the tokens (B, N, C).
        num_heads: attention heads; must divide ``embed_dims``.
        mlp_ratio: MLP hidden width over ``embed_dims``.
        drop_path_rate: stochastic depth of each branch.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.,
                 drop_path_rate: float = 0., qkv_bias: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = MultiheadSelfAttention(embed_dims, num_heads, qkv_bias)
        self.ln2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.ffn = FFN(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path_rate)

    def attention_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.attn(self.ln1(x)))

    def mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.ffn(self.ln2(x)))
