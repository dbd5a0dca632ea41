"""Audio in and out: wav reading/writing and resampling (``wav``), background-noise mixing (``noise``), speech
synthesis with espeak-ng (``espeak``), atomic file output (``atomic``)."""
