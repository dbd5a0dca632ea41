"""``load(DIR)``: open a host build of a generated model (``lib<name>.so``) with ctypes and run it from Python."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from kwsc.errors import InputError, ToolchainError

__all__ = ["CompiledModel", "load"]

_FLOAT_P = ctypes.POINTER(ctypes.c_float)


class CompiledModel:
    """A compiled model in this process: ``predict(frame)``, ``reset()``, sizes and metadata.

    Uses the ELL-compatible default instance (``<name>_Predict`` / ``<name>_Reset``); ``new_state()`` gives
    independent instances for ``predict_state``.
    """

    def __init__(self, library: Path, name: str) -> None:
        self.path = library
        self.name = name
        try:
            self._lib = ctypes.CDLL(str(library))
        except OSError as exc:
            raise ToolchainError(f"cannot load {library}: {exc}") from exc
        fn = self._fn
        fn("GetInputSize", ctypes.c_int32, [ctypes.c_int32])
        fn("GetOutputSize", ctypes.c_int32, [ctypes.c_int32])
        fn("GetMetadata", ctypes.c_char_p, [ctypes.c_char_p])
        fn("Reset", None, [])
        fn("ResetState", None, [ctypes.c_void_p])
        self.input_sizes = self._sizes("GetInputSize")
        self.output_sizes = self._sizes("GetOutputSize")
        ptrs = [_FLOAT_P] * (len(self.input_sizes) + len(self.output_sizes))
        fn("Predict", None, [ctypes.c_void_p] + ptrs)
        fn("PredictState", None, [ctypes.c_void_p] + ptrs)
        fn("GetStateSize", ctypes.c_int32, [])
        self._outs = [np.zeros(n, np.float32) for n in self.output_sizes]

    def _fn(self, suffix: str, restype, argtypes) -> None:
        try:
            f = getattr(self._lib, f"{self.name}_{suffix}")
        except AttributeError as exc:
            raise ToolchainError(f"{self.path} has no {self.name}_{suffix}: not a kwsc model library") from exc
        f.restype, f.argtypes = restype, argtypes
        setattr(self, "_c_" + suffix, f)

    def _sizes(self, getter: str) -> list[int]:
        sizes, f = [], getattr(self, "_c_" + getter)
        while f(len(sizes)) > 0:
            sizes.append(int(f(len(sizes))))
        return sizes

    @property
    def input_size(self) -> int:
        return self.input_sizes[0]

    @property
    def output_size(self) -> int:
        return self.output_sizes[0]

    def metadata(self, key: str) -> str:
        """``<name>_GetMetadata(key)``: the value, or "" when absent."""
        return self._c_GetMetadata(key.encode()).decode("utf-8", "replace")

    def reset(self) -> None:
        self._c_Reset()

    def _args(self, frames: tuple[np.ndarray, ...]) -> list:
        if len(frames) != len(self.input_sizes):
            raise InputError(f"{self.name} takes {len(self.input_sizes)} input(s), got {len(frames)}")
        ins = []
        for x, n in zip(frames, self.input_sizes):
            x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
            if x.size != n:
                raise InputError(f"{self.name}: input of {x.size} values, expected {n}")
            ins.append(x)
        self._keep = ins
        return [x.ctypes.data_as(_FLOAT_P) for x in ins] + [o.ctypes.data_as(_FLOAT_P) for o in self._outs]

    def _result(self):
        outs = [o.copy() for o in self._outs]
        return outs[0] if len(outs) == 1 else outs

    def predict(self, *frames: np.ndarray):
        """One tick on the default instance: returns the output (a list when the model has several)."""
        self._c_Predict(None, *self._args(frames))
        return self._result()

    def new_state(self) -> ctypes.Array:
        """A fresh, zeroed instance for ``predict_state`` (valid as is: the first call resets it)."""
        return ctypes.create_string_buffer(self.state_size)

    @property
    def state_size(self) -> int:
        """sizeof(<name>_State): one instance's activations and state."""
        return int(self._c_GetStateSize())

    def predict_state(self, state: ctypes.Array, *frames: np.ndarray):
        """One tick on an instance from ``new_state()``."""
        self._c_PredictState(ctypes.addressof(state), *self._args(frames))
        return self._result()

    def reset_state(self, state: ctypes.Array) -> None:
        self._c_ResetState(ctypes.addressof(state))

    def run(self, frames: np.ndarray, resets: list[int] = ()) -> np.ndarray:
        """Many ticks of a single-input, single-output model on the default instance: (T, in) → (T, out),
        with ``reset()`` before each listed frame index."""
        frames = np.asarray(frames, dtype=np.float32).reshape(len(frames), -1)
        reset_at = set(int(r) for r in resets)
        out = np.empty((len(frames), self.output_size), np.float32)
        for t, frame in enumerate(frames):
            if t in reset_at:
                self.reset()
            out[t] = self.predict(frame) if len(self.output_sizes) == 1 else self.predict(frame)[0]
        return out


def load(directory: str | Path) -> CompiledModel:
    """Open the host build in ``directory`` (made by ``emit_c(..., arch="host", build=True)``).

    The dynamic loader caches libraries by path: rebuilding a different model into the same folder in the same
    process gives the old one back, so emit each model into its own folder.

    Raises:
        InputError: no library there (not built for the host, or not a generated project).
    """
    directory = Path(directory)
    libs = sorted(directory.glob("lib*.so"))
    if not libs:
        raise InputError(f"{directory}: no lib<name>.so; emit with --arch host --build first")
    if len(libs) > 1:
        raise InputError(f"{directory}: several libraries ({', '.join(p.name for p in libs)}); expected one")
    name = libs[0].name[3:-3]
    return CompiledModel(libs[0].resolve(), name)
