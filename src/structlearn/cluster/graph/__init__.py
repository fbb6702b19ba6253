"""Graphs and the spectral step: sparse affinities (:mod:`.affinity`, :mod:`.gram_affinity`,
:mod:`.temporal`), connectivity repair (:mod:`.connectivity`) and the one spectral clustering step every
method ends with (:mod:`.spectral`). Imports nothing from the rest of :mod:`structlearn.cluster`.
"""
