"""GPT and ViT assembled from :mod:`structlearn.nn`."""

from structlearn.models.gpt import GPT, GPTConfig
from structlearn.models.segmentation import SegConfig, SegModel
from structlearn.models.vit import ViT, ViTConfig

__all__ = ["GPT", "GPTConfig", "SegConfig", "SegModel", "ViT", "ViTConfig"]
