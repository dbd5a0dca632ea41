"""``kwsc make-featurizer``: ELL's ``make_featurizer.py`` options → a featurizer model (.kwsc or .ell)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kwsc.commands._util import add_command, option

__all__ = ["register", "ORDER"]

ORDER = 10

_DESCRIPTION = """\
Build the audio featurizer as a streaming model: each call takes --input_buffer_size samples (scaled to
[-1, 1)) and returns one feature frame. Same options, defaults and node chain as ELL's make_featurizer.py.

Writes featurizer.ell by default (the name the ELL tutorial's next steps use); -o X.kwsc for kwsc's format.

example (the ELL keyword-spotter tutorial's featurizer: 80 log-mel energies per 512 samples):
  kwsc make-featurizer --sample_rate 16000 --window_size 512 --input_buffer_size 512 --hamming_window \\
      --filterbank_type mel --filterbank_size 80 --filterbank_nfft 512 --nfft 512 --log --auto_scale
"""


def register(sub) -> None:
    p = add_command(sub, "make-featurizer", _make_featurizer, help="build the audio featurizer model (ELL options)",
                    description=_DESCRIPTION, aliases=("make_featurizer",))
    option(p, "--output_filename", "-o", dest="output", default="featurizer.ell", metavar="OUT",
           help="output model: .ell (ELL JSON) or .kwsc by extension (default: featurizer.ell, as ELL)")
    option(p, "--sample_rate", "-r", type=int, default=16000, help="audio sample rate in Hz (default 16000)")
    option(p, "--window_size", "-ws", type=int, default=512, help="samples per FFT frame (default 512)")
    option(p, "--input_buffer_size", "-ib", type=int, default=160,
           help="samples per call (the hop); smaller than the window gives overlapping frames (default 160)")
    option(p, "--hamming_window", action="store_true", help="multiply each frame by a symmetric Hamming window")
    option(p, "--filterbank_type", "-t", default="mel", metavar="{mel,linear,none}",
           help="filter bank: mel, linear or none (default mel)")
    option(p, "--filterbank_size", "-fs", type=int, default=40, help="number of filters (default 40)")
    option(p, "--filterbank_nfft", "-fn", type=int, default=None,
           help="FFT size used to place the mel filters (default: --nfft)")
    option(p, "--nfft", type=int, default=None, help="FFT length, a power of 2 (default: next power of 2 >= window)")
    option(p, "--log", action="store_true", help="output ln(x + log_delta)")
    option(p, "--log_delta", type=float, default=1.0, help="constant added before the log (default 1.0)")
    option(p, "--dct", action="store_true", help="append an unnormalised DCT-II (cepstrum)")
    option(p, "--power_spec", action="store_true", help="use the power spectrum m²/nfft instead of magnitudes m")
    option(p, "--iir", action="store_true", help="add a pre-emphasis filter y[n] = x[n] - pre_emphasis·x[n-1]")
    option(p, "--pre_emphasis", "-pe", type=float, default=0.97, help="pre-emphasis coefficient (default 0.97)")
    option(p, "--auto_scale", action="store_true",
           help="mark the model so readers scale 16-bit audio by 1/32768 (metadata only)")


def _make_featurizer(args: argparse.Namespace) -> int:
    from kwsc.frontends.featurizer import FeaturizerOptions, make_featurizer
    from kwsc.models import save_model

    options = FeaturizerOptions.from_dict(vars(args))
    graph = make_featurizer(options)
    out = Path(args.output)
    if out.suffix.lower() not in (".kwsc", ".ell"):
        from kwsc.errors import InputError

        raise InputError(f"{out}: a featurizer is written as .kwsc or .ell, not {out.suffix or '(no extension)'}")
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".ell":
        try:
            import kwsc.backends.ell  # noqa: F401
        except ImportError:
            from kwsc.errors import BackendError

            raise BackendError(f"{out}: the .ell writer (kwsc.backends.ell) is not available in this build; "
                               f"write .kwsc instead") from None
    save_model(graph, out)
    meta = graph.metadata
    ops = " → ".join(n.op for n in graph.nodes if n.op != "Constant")
    print(f"wrote {out}: {meta['input_size']} samples in → {meta['output_size']} features out per call "
          f"(window {meta['window_size']}, hop {meta['input_size']}, {meta['sample_rate']} Hz, "
          f"{len(graph)} nodes)")
    print(f"  {ops}")
    return 0
