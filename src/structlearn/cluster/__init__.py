"""Scikit-learn-style clustering estimators and the shared pieces they are built from."""
