"""The DDPM U-Net (Ho et al. 2020, Appendix B; seeds 002 and 004).

Residual blocks with GroupNorm and SiLU, dropout, a sinusoidal time embedding through an MLP
added in every residual block, self-attention at chosen resolutions, and down/up paths joined
by skip connections. It predicts a tensor shaped like its input (ε, x_0 or v). A class-conditional
U-Net (num_classes > 0) adds a learned class embedding to the time embedding (models.classes).
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

from diffusion_studio.core.models.classes import class_embedding, embed_labels
from diffusion_studio.core.models.config import UNetConfig, validate_unet_config


def timestep_embedding(index: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer sinusoidal embedding (Vaswani et al.): [sin(i·ω_k), cos(i·ω_k)], ω_k = P^(−k/(d/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=index.device, dtype=torch.float32) / half)
    args = index.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(embedding, (0, dim % 2))


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups, as many as divide the width."""
    groups = math.gcd(32, channels)
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """h = conv(SiLU(GN(x))) + Linear(SiLU(emb)); out = skip(x) + conv(dropout(SiLU(GN(h))))."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2, self.dropout = _norm(out_ch), nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over the H·W positions: out = x + proj(softmax(QKᵀ/√d) V)."""

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.num_heads, c // self.num_heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class _Level(nn.Module):
    """A residual block, optionally followed by attention."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, attention: bool, heads: int) -> None:
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, dropout)
        self.attn = AttentionBlock(out_ch, heads) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, emb))


class UNet(nn.Module):
    """network(x_t, index, label) → prediction, index = t − 1 (one per sample); the embedding every residual
    block receives is emb = MLP(emb(index)) + E[label] (E only when num_classes > 0)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        validate_unet_config(config)
        self.config = c = config
        self.num_classes = c.num_classes  # K: labels 0…K−1 and the null label K (0: unconditional)
        base, emb_dim = c.base_channels, 4 * c.base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = class_embedding(c.num_classes, emb_dim)
        self.stem = nn.Conv2d(c.in_channels, base, 3, padding=1)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, ch = [base], base
        for level, (mult, res) in enumerate(zip(c.channel_mults, c.resolutions)):
            blocks = nn.ModuleList()
            for _ in range(c.num_res_blocks):
                blocks.append(_Level(ch, base * mult, emb_dim, c.dropout, res in c.attention_resolutions, c.num_heads))
                ch = base * mult
                skips.append(ch)
            self.down.append(blocks)
            last = level == len(c.channel_mults) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            if not last:
                skips.append(ch)

        self.mid = nn.ModuleList(
            [_Level(ch, ch, emb_dim, c.dropout, True, c.num_heads), _Level(ch, ch, emb_dim, c.dropout, False, c.num_heads)]
        )

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, (mult, res) in reversed(list(enumerate(zip(c.channel_mults, c.resolutions)))):
            blocks = nn.ModuleList()
            for _ in range(c.num_res_blocks + 1):
                blocks.append(
                    _Level(ch + skips.pop(), base * mult, emb_dim, c.dropout, res in c.attention_resolutions, c.num_heads)
                )
                ch = base * mult
            self.up.append(blocks)
            self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1) if level > 0 else nn.Identity())

        self.head = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, c.out_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, index: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """label: a LongTensor (N,) of 0…K (K: ∅), None for ∅ (or for an unconditional network)."""
        emb = self.time_mlp(timestep_embedding(index, self.config.base_channels))
        emb = emb + embed_labels(self.class_embedding, label, x.shape[0], x.device)
        h = self.stem(x)
        skips = [h]
        for blocks, downsample in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb)
                skips.append(h)
            if not isinstance(downsample, nn.Identity):
                h = downsample(h)
                skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        for blocks, upsample in zip(self.up, self.upsample):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if not isinstance(upsample, nn.Identity):
                h = upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.head(h)
