"""GPT and ViT assembled from :mod:`structlearn.nn`."""
