"""Unsupervised person re-identification: the shared pipeline (spec segmentation_reid.md §2, §6).

Sparse k-reciprocal Jaccard distance, DBSCAN pseudo-labels with a label-free eps rule, instance and
cluster memories, P×K sampling, and mAP / CMC / mINP with the field's gallery filtering. The training
methods (CACL, HCL, SiCL) build on these.
"""

from structlearn.reid.evaluation import RetrievalResult, evaluate_retrieval
from structlearn.reid.jaccard import jaccard_distance
from structlearn.reid.memory import ClusterMemory, InstanceMemory
from structlearn.reid.pseudo_labels import pseudo_labels, select_eps
from structlearn.reid.sampler import pk_epoch

__all__ = [
    "ClusterMemory",
    "InstanceMemory",
    "RetrievalResult",
    "evaluate_retrieval",
    "jaccard_distance",
    "pk_epoch",
    "pseudo_labels",
    "select_eps",
]
