"""Per-file accuracy of an exported window model through kwsc: import the ONNX, run kwsc's reference interpreter
on each file's window of a dataset split (one ELL-layout row per file), and compare with PyTorch's predictions.

    python tools/window_accuracy.py MODEL_DIR/TCResNet20KeywordSpotter.onnx data/testing_list.npz

Prints: files, accuracy of the imported model, the largest |log-probability| difference from the exported ONNX
under onnxruntime, and how many files the two classify differently. Exit 1 when any file differs.
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str]) -> int:
    import onnx
    import onnxruntime as ort

    from kwsc.backends.reference import Interpreter
    from kwsc.models import load_model
    from kwsc.train.data import load_npz_dataset

    model_path, data_path = argv
    meta = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    import json

    split = load_npz_dataset(data_path, json.loads(meta["categories"]))
    graph = load_model(model_path)
    interpreter = Interpreter(graph)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    nft = meta.get("layout") == "NFT"
    ours, theirs, worst = [], [], 0.0
    for row in split.features:
        x = (row.T[None] if nft else row[None, None]).astype(np.float32)
        a = interpreter.step(x)
        b = session.run(None, {"input": x})[0]
        worst = max(worst, float(np.max(np.abs(a - b))))
        ours.append(int(a.argmax()))
        theirs.append(int(b.argmax()))
    ours, theirs = np.array(ours), np.array(theirs)
    accuracy = float((ours == split.labels).mean())
    differ = int((ours != theirs).sum())
    print(f"{model_path}: {len(ours)} files, kwsc reference interpreter {accuracy * 100:.1f} % "
          f"({int((ours == split.labels).sum())}/{len(ours)}); max |Δ log-prob| vs onnxruntime {worst:.2g}; "
          f"{differ} files classified differently")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
