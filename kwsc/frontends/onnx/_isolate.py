"""ONNX's C++ checker, shape inference and version converter run in a forked child.

Fed a hostile model, the pinned onnx's C++ code can abort the whole process (``Fatal Python error: Aborted`` in
``shape_inference.infer_shapes``, and in ``version_converter.convert_version``: found by the fuzz tests) — no Python
``except`` can catch that. ``isolated`` runs such a call in a ``fork`` of this process: its result or exception comes
back through a pipe, and a child that dies becomes one clear line. A fork costs a few milliseconds; where ``fork``
is missing the call runs in-process.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
from typing import Any, Callable

from kwsc.errors import FrontendError

__all__ = ["isolated"]


def isolated(where: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` computed in a forked child: its return value, or its exception re-raised here.

    Raises:
        FrontendError: the child died (a signal or an abort inside ONNX's C++ code), naming ``what`` ran.
    """
    if not hasattr(os, "fork"):
        return fn(*args)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave without running any of the parent's exit handlers
        status = 0
        try:
            os.close(read)
            devnull = os.open(os.devnull, os.O_WRONLY)  # a C++ abort's own text would precede kwsc's one line
            os.dup2(devnull, 2)
            faulthandler.disable()  # (pytest's or PYTHONFAULTHANDLER's dump of the dying child, likewise)
            try:
                payload = pickle.dumps((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - sent back and re-raised in the parent
                try:
                    payload = pickle.dumps((False, exc))
                except Exception:  # an exception type that does not pickle: its text is enough
                    payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
            with os.fdopen(write, "wb") as out:
                out.write(payload)
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"was killed by {signal.Signals(sig).name}" if sig in signal.Signals._value2member_map_ else \
                f"was killed by signal {sig}"
        else:
            how = f"exited with status {os.WEXITSTATUS(status)}"
        raise FrontendError(f"{where}: {what} crashed on this model ({how}); the model is malformed")
    ok, value = pickle.loads(data)
    if ok:
        return value
    raise value
