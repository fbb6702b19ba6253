"""Offline data: text corpora, image sets, synthetic generators and user features. Nothing downloads."""
