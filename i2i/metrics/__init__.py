"""Measures: classifier-based accuracy and Frechet distance for conditional generators."""
from .conditional import evaluate_generator, frechet_distance, matched_accuracy

__all__ = ["evaluate_generator", "frechet_distance", "matched_accuracy"]
