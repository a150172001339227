"""A time-conditioned MLP for 2-D point data (the Swiss roll of Sohl-Dickstein et al. 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffusion_studio.core.models.config import MLPConfig, validate_mlp_config
from diffusion_studio.core.models.unet import timestep_embedding


class MLPDenoiser(nn.Module):
    """h₀ = W x + MLP(emb(t)); h_{k+1} = h_k + W_k SiLU(LN(h_k) + E_k emb); out = W_out SiLU(h)."""

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        validate_mlp_config(config)
        self.config = c = config
        self.time_mlp = nn.Sequential(nn.Linear(c.time_dim, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.inp = nn.Linear(c.dim, c.hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(c.hidden) for _ in range(c.num_layers))
        self.layers = nn.ModuleList(nn.Linear(c.hidden, c.hidden) for _ in range(c.num_layers))
        self.out = nn.Linear(c.hidden, c.dim)

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(index, self.config.time_dim))
        h = self.inp(x) + emb
        for norm, layer in zip(self.norms, self.layers):
            h = h + layer(F.silu(norm(h) + emb))
        return self.out(F.silu(h))
