import os, signal, pytest
from kwsc.errors import FrontendError
from kwsc.frontends.onnx._isolate import isolated

def test_isolated_returns_raises_and_survives_an_abort():
    assert isolated("m", "x", lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(FrontendError, match="^m: boom$"):
        isolated("m", "x", lambda: (_ for _ in ()).throw(FrontendError("m: boom")))
    with pytest.raises(FrontendError, match=r"^m: ONNX's checker crashed on this model \(was killed by SIGABRT\)"):
        isolated("m", "ONNX's checker", os.abort)
