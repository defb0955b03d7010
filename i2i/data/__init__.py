"""Data: image I/O keeping channels and bit depth, albumentations transforms, folder data sets, demos.

Importing this package registers the data sets ``paired_folder``, ``unpaired_folder``, ``single_folder``,
``labeled`` and ``domains``.
"""
from .demo import DEMOS, ensure_demo
from .domains import DomainImages
from .folders import FolderDataset, PairedFolder, SingleFolder, UnpairedFolder
from .io import (
    IMAGE_EXTENSIONS,
    adapt_channels,
    from_tensor,
    list_images,
    read_image,
    to_float,
    to_tensor,
    to_uint8,
    write_image,
)
from .labeled import LabeledImages, load_labeled_arrays
from .superres import SuperResFolder, load_sr_pairs
from .transforms import apply_transform, build_transform, transform_names

__all__ = [
    "DEMOS", "DomainImages", "FolderDataset", "IMAGE_EXTENSIONS", "LabeledImages", "PairedFolder", "SingleFolder",
    "SuperResFolder", "UnpairedFolder", "adapt_channels", "apply_transform", "build_transform", "ensure_demo",
    "from_tensor", "list_images", "load_labeled_arrays", "load_sr_pairs", "read_image", "to_float",
    "to_tensor", "to_uint8", "transform_names", "write_image",
]
