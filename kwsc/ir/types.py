"""Tensor types of IR values: a static shape and a dtype."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TensorType", "DTYPES", "dtype_of"]

# The element types values can have. float32 is the model type; int32 carries VAD signals and
# reset triggers; int64 exists because ONNX shape plumbing uses it.
DTYPES = ("float32", "float64", "int32", "int64", "bool")


def dtype_of(array: np.ndarray) -> str:
    """The IR dtype name of a numpy array (raises ValueError for unsupported dtypes)."""
    name = np.dtype(array.dtype).name
    if name not in DTYPES:
        raise ValueError(f"unsupported dtype {name}; supported: {', '.join(DTYPES)}")
    return name


@dataclass(frozen=True)
class TensorType:
    """Static shape and element type of one value (per tick, without any batch/time dimension)."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {self.dtype!r}; supported: {', '.join(DTYPES)}")
        if any(d < 0 for d in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def np_dtype(self) -> np.dtype:
        """The numpy dtype."""
        return np.dtype(self.dtype)

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"

    @classmethod
    def of(cls, array: np.ndarray) -> "TensorType":
        """The type of a concrete array."""
        return cls(tuple(array.shape), dtype_of(array))
