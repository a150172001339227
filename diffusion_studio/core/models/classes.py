"""The class condition of a network: a learned embedding of the label c, added to the time embedding.

A network conditioned on K classes has an embedding table of K + 1 rows: rows 0…K−1 are the classes,
row K the null label ∅ (``config.null_label``), which stands for "no class". One network so gives
both ε̂(x_t, c) and ε̂(x_t, ∅), the two predictions classifier-free guidance combines (Ho & Salimans
2022). The layout is diffusers' ``UNet2DModel(num_class_embeds=K + 1)``: emb = MLP(emb(t)) + E[c].
"""

from __future__ import annotations

import torch
from torch import nn

from diffusion_studio.core.models.config import null_label


def class_embedding(num_classes: int, dim: int) -> nn.Embedding | None:
    """The table E of K + 1 rows of size ``dim`` (the classes, then ∅), or None when unconditional (K = 0)."""
    return nn.Embedding(num_classes + 1, dim) if num_classes else None


def embed_labels(table: nn.Embedding | None, label: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor | float:
    """E[c] for each of ``n`` samples (label: a LongTensor (n,) of 0…K; None: ∅ for all), or 0 for an
    unconditional network, which takes no label (ValueError if given one)."""
    if table is None:
        if label is not None:
            raise ValueError("this network is unconditional (num_classes = 0): it takes no label")
        return 0.0
    if label is None:
        label = torch.full((n,), null_label(table.num_embeddings - 1), dtype=torch.long, device=device)
    return table(label)
