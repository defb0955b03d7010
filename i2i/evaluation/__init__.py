"""Measures: classifier-based accuracy and Frechet distance for conditional generators."""
from .conditional import evaluate_generator, frechet_distance, matched_accuracy
from .sr import bicubic_upscale, evaluate_sr, psnr, rgb_to_y, ssim

__all__ = [
    "bicubic_upscale", "evaluate_generator", "evaluate_sr", "frechet_distance", "matched_accuracy", "psnr",
    "rgb_to_y", "ssim",
]
