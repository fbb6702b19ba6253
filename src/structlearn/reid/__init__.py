"""Unsupervised person re-identification: the shared pipeline (spec segmentation_reid.md §2, §6).

:func:`jaccard_distance` (sparse k-reciprocal encoding) and :func:`evaluate_retrieval` (mAP / CMC /
mINP with the field's gallery filtering) so far; the training methods (CACL, HCL, SiCL) build on them.
"""

from structlearn.reid.evaluation import RetrievalResult, evaluate_retrieval
from structlearn.reid.jaccard import jaccard_distance

__all__ = ["RetrievalResult", "evaluate_retrieval", "jaccard_distance"]
