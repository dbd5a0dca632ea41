"""kwsc.train: keyword-spotter training (PyTorch), ONNX export, and the seed-compatible configuration.

Importing the package imports no torch (the command module reads kwsc.train.options/config to build its parser).
"""

import os

# PyTorch's OpenMP threads spin while waiting; on a machine whose cores are busy with other work that makes
# small-matrix RNN training tens of times slower (measured: 9 s vs 0.1 s per batch). Passive waiting costs
# nothing when the cores are free. Must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
