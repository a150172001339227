"""A time-conditioned MLP for 2-D point data (the Swiss roll of Sohl-Dickstein et al. 2015), optionally
class-conditional (models.classes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffusion_studio.core.models.classes import class_embedding, embed_labels
from diffusion_studio.core.models.config import MLPConfig, validate_mlp_config
from diffusion_studio.core.models.unet import timestep_embedding


class MLPDenoiser(nn.Module):
    """e = MLP(emb(t)) + E[c]; h₀ = W x + e; h_{k+1} = h_k + W_k SiLU(LN(h_k) + e); out = W_out SiLU(h).

    E[c] is the class embedding of a conditional network (num_classes > 0; models.classes), absent otherwise.
    """

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        validate_mlp_config(config)
        self.config = c = config
        self.num_classes = c.num_classes  # K: labels 0…K−1 and the null label K (0: unconditional)
        self.time_mlp = nn.Sequential(nn.Linear(c.time_dim, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.class_embedding = class_embedding(c.num_classes, c.hidden)
        self.inp = nn.Linear(c.dim, c.hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(c.hidden) for _ in range(c.num_layers))
        self.layers = nn.ModuleList(nn.Linear(c.hidden, c.hidden) for _ in range(c.num_layers))
        self.out = nn.Linear(c.hidden, c.dim)

    def forward(self, x: torch.Tensor, index: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """network(x_t, t − 1, c): c a LongTensor (N,) of 0…K (K: ∅), None for ∅ (or for an unconditional network)."""
        emb = self.time_mlp(timestep_embedding(index, self.config.time_dim))
        emb = emb + embed_labels(self.class_embedding, label, x.shape[0], x.device)
        h = self.inp(x) + emb
        for norm, layer in zip(self.norms, self.layers):
            h = h + layer(F.silu(norm(h) + emb))
        return self.out(F.silu(h))
