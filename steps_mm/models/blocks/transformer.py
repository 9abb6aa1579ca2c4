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


class TransformerBlock(ResidualBlock):
    """LN, attention, residual; LN, MLP, residual; drop path on each branch.

    ``residual(x) = a + m(x + a)`` with ``a`` the attention branch and ``m`` the
    MLP branch, exactly; ``forward`` adds them as ViT does (``(x + a) + m``).

    Args:
        embed_dims: the width C of the tokens (B, N, C).
        num_heads: attention heads; must divide ``embed_dims``.
        mlp_ratio: MLP hidden width over ``embed_dims``.
        drop_path_rate: stochastic depth of each branch.
    """

    layer_count = 5  # the paper's count for a Transformer block

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.,
                 drop_path_rate: float = 0., qkv_bias: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = MultiheadSelfAttention(embed_dims, num_heads, qkv_bias)
        self.ln2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.ffn = FFN(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path_rate)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.drop_path(self.attn(self.ln1(x)))
        return attn + self.drop_path(self.ffn(self.ln2(x + attn)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the residual adds in place into the branches' fresh outputs (their
        # last ops' backward does not read them): two allocations fewer a block
        mid = self.drop_path(self.attn(self.ln1(x)))
        mid += x
        out = self.drop_path(self.ffn(self.ln2(mid)))
        out += mid
        return out
