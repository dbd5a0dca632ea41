"""The fuzz suite (issue 17): mutated ONNX, .ell, .kwsc and wav files through the kwsc command line.

``seeds.py`` builds small valid files, ``mutate.py`` changes them (hypothesis-drawn or seeded randomness),
``cases.py`` runs one case through the CLI and classifies its outcome, ``test_fuzz.py`` runs a bounded sample in
``make test`` and ``python -m tests.fuzz`` (``make fuzz``) runs thousands in worker processes and writes a tally.
"""
