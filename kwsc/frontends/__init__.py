"""Frontends: source formats → IR (onnx.py, ell.py, featurizer.py). They only translate."""
