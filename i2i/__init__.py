"""i2i: conditional and image-to-image GANs from readable recipe files."""
__version__ = "0.1.0"
