"""Audio in and out: wav reading/writing and resampling (``wav``), background-noise mixing (``noise``), speech
synthesis with espeak-ng (``espeak``). Atomic file output lives in ``kwsc.fileio``."""
