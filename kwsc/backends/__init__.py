"""Backends: IR → something that runs or can be read (reference.py, ell.py, c/, viz.py, onnx.py)."""
