"""structlearn: deeply normalized Transformers, warmup-free training and scalable subspace clustering.

Subpackages:
    nn, models      Transformer blocks with a configurable normalization scheme; GPT and ViT.
    optim           SGDW, spectrally bounded updates, schedules, parameter groups.
    data            offline text, image, synthetic and user-feature loaders.
    train           the Transformer training engine and atomic checkpoints.
    diagnostics     gradient and attention statistics, plots.
    cluster         scikit-learn-style subspace / spectral clustering estimators.
"""

__version__ = "0.1.0"
