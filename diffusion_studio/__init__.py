"""Diffusion Studio: see how denoising diffusion models destroy and rebuild images."""

__version__ = "0.1.0"
