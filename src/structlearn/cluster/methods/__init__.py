"""The clustering estimators, one module per method, with what only estimators use: the scikit-learn
base class (:mod:`.base`), the deep-estimator scaffold (:mod:`.deep_base`), their networks
(:mod:`.networks`) and per-method configs and initialisations. The public classes are re-exported by
:mod:`structlearn.cluster`.
"""
