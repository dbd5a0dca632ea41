"""Speech synthesis with espeak-ng, driven through ctypes (library and voices from the ``espeakng-loader`` wheel).

No system package is needed: ``espeakng_loader`` ships ``libespeak-ng`` and its ``espeak-ng-data``. The library
is initialised once per process in synchronous mode; a synth callback collects the 16-bit samples it produces
(22050 Hz for every voice).

Example::

    speaker = Espeak()
    samples = speaker.say("yes", voice="en-us+f3", rate=160, pitch=60)   # float32 at speaker.sample_rate
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

from kwsc.errors import InputError, ToolchainError

__all__ = ["Espeak", "ENGLISH_VOICES", "VOICE_VARIANTS", "espeak_paths"]

# English voices shipped with espeak-ng (espeak-ng-data/lang/gmw/*); names are case-insensitive.
ENGLISH_VOICES = ("en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-us-nyc")
# Voice variants (espeak-ng-data/voices/!v): male, female, Klatt-synthesiser and whispering timbres, and others.
VOICE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                  "klatt3", "klatt4", "whisper", "whisperf", "croak", "Alex", "Andy", "Annie", "Denis", "Gene",
                  "Jacky", "Lee", "Michael", "Mike", "Reed", "Storm", "Tweaky", "adam", "anika", "aunty", "belinda",
                  "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma", "grandpa", "iven", "john",
                  "linda", "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis",
                  "victor", "zac")

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def espeak_paths() -> tuple[str, str]:
    """(library file, espeak-ng-data folder) from the espeakng-loader package."""
    try:
        import espeakng_loader
    except ImportError:
        raise ToolchainError("speech synthesis needs the espeakng-loader package "
                             "(pip install -c requirements/constraints.txt 'kwsc[audio]')") from None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class Espeak:
    """One espeak-ng instance for this process (the library keeps global state: one per process, one thread)."""

    _instance: "Espeak | None" = None
    _pid: int | None = None
    _lock = threading.Lock()

    def __new__(cls) -> "Espeak":
        with cls._lock:
            if cls._instance is None or cls._pid != os.getpid():  # a forked child initialises its own copy
                instance = super().__new__(cls)
                instance._start()
                cls._instance, cls._pid = instance, os.getpid()
        return cls._instance

    @classmethod
    def loaded(cls) -> bool:
        """Whether this process's memory holds an initialised espeak-ng (started here or inherited by fork)."""
        return cls._instance is not None

    def _start(self) -> None:
        library, data = espeak_paths()
        try:
            lib = ctypes.CDLL(library)
        except OSError as exc:
            raise ToolchainError(f"cannot load {library}: {exc}") from None
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        # espeak_Initialize wants the folder that *contains* espeak-ng-data.
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.path.dirname(data).encode(),
                                     _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise ToolchainError(f"espeak-ng failed to initialise with data from {data}")
        self.sample_rate = int(rate)
        self._lib = lib
        self._chunks: list[np.ndarray] = []

        def collect(wav, count, events):
            if wav and count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: the library calls it later
        lib.espeak_SetSynthCallback(self._callback)
        # Breathy, whispered and Klatt voices draw noise from espeak's own generator and from libc's rand():
        # both are seeded before every utterance so the same call gives the same samples in any process.
        self._set_rand_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._set_rand_seed is not None:
            self._set_rand_seed.argtypes = [ctypes.c_long]
        self._srand = ctypes.CDLL(None).srand
        self._srand.argtypes = [ctypes.c_uint]

    def say(self, text: str, voice: str = "en", rate: int = 175, pitch: int = 50, pitch_range: int = 50,
            volume: int = 100, seed: int = 0) -> np.ndarray:
        """Speak ``text``; returns float32 samples in [-1, 1) at ``self.sample_rate``.

        Args:
            text: what to say.
            voice: ``language[+variant]``, e.g. ``en-gb-x-rp+f2``.
            rate: words per minute (80–450).
            pitch, pitch_range: base pitch and its range (0–100).
            volume: amplitude (0–200, 100 normal).
            seed: seeds the noise sources of breathy/whispered voices, so output is reproducible.
        """
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise InputError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, volume)):
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        self._srand(int(seed) & 0xFFFFFFFF)
        if self._set_rand_seed is not None:
            self._set_rand_seed(int(seed) & 0x7FFFFFFF)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        status = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise ToolchainError(f"espeak-ng could not speak {text!r} with voice {voice!r} (status {status})")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return samples.astype(np.float32) / 32768.0
