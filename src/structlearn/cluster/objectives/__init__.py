"""Differentiable objectives and projections the deep estimators train with: coding rates (MCR²,
:mod:`.coding_rate`), log-domain Sinkhorn (:mod:`.sinkhorn`), the relaxed normalised cut
(:mod:`.ncut`) and the block-diagonal regulariser (:mod:`.regularizers`). Imports nothing from the rest
of :mod:`structlearn.cluster`.
"""
