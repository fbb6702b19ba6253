"""Transformer building blocks: norms, attention, and the block whose norm scheme is a config value."""

from structlearn.nn.attention import MultiHeadAttention
from structlearn.nn.block import NORM_SCHEMES, Block, FeedForward, NormScheme, resolve_scheme
from structlearn.nn.norms import LayerNorm, QKNorm, RMSNorm, make_norm
from structlearn.nn.transformer import Transformer

__all__ = [
    "NORM_SCHEMES",
    "Block",
    "FeedForward",
    "LayerNorm",
    "MultiHeadAttention",
    "NormScheme",
    "QKNorm",
    "RMSNorm",
    "Transformer",
    "make_norm",
    "resolve_scheme",
]
