"""Inference: everything that runs from an export alone, with no trainer and no accelerate.

``export`` (the bundle: write, load, interpolate), ``translate`` (folders of images), ``tiling`` (large images in
blended tiles), ``latents`` (codes for multimodal generators), ``sample`` (noise-driven generators) and ``grid``
(sample grids as PNG).
"""
