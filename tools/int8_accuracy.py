"""Per-file accuracy of a model in float32 and in int8 arithmetic (the ``quantize`` pass: QConv/QDense …), through
kwsc's reference interpreter — which computes what the int8 C build computes, bit for bit in the integer parts — on
each file's window of a dataset split (one ELL-layout row per file).

    python tools/int8_accuracy.py MODEL.onnx|MODEL.kwsc data/testing_list.npz [--calibrate data/validation_list.npz]
        [--no-equalize] [--categories data/categories.txt]

A window model (its input holds the whole row) reads each file's window once: prints files, float accuracy, int8
accuracy, the files whose class differs between the two (argmax agreement), the largest |Δ output|. A per-tick
model (the ``stream`` pass's; its input is one frame) runs each file's frames from a reset: the same at the last
frame, plus the argmax agreement over every frame. With --calibrate (window models) each int8 layer's input scale
is fixed from the float model's largest input over that split's windows (else each call's own max|x|).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _windows(graph, rows: np.ndarray) -> np.ndarray:
    """Rows (files, T·F, ELL layout: frame after frame) as the window model's input: [1, 1, T, F] or [1, F, T]."""
    shape = tuple(graph.inputs[0].shape)
    if len(shape) == 3:  # [1, F, T]: features as channels
        frames = rows.reshape(len(rows), shape[2], shape[1]).transpose(0, 2, 1)
    else:
        frames = rows
    return np.ascontiguousarray(frames, np.float32).reshape((len(rows),) + shape)


def main(argv: list[str]) -> int:
    from kwsc.backends.reference import Interpreter
    from kwsc.evaluate.calibrate import apply_scales
    from kwsc.ir.quantized import column_scales, conv_channel_scales
    from kwsc.ir.semantics import evaluate_static
    from kwsc.models import load_model
    from kwsc.passes import run_passes
    from kwsc.train.data import load_npz_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("dataset")
    parser.add_argument("--calibrate", default=None)
    parser.add_argument("--no-equalize", action="store_true")
    parser.add_argument("--categories", default=None)
    args = parser.parse_args(argv)
    categories = None
    if args.categories:
        categories = [c.strip() for c in open(args.categories).read().splitlines() if c.strip()]
    split = load_npz_dataset(args.dataset, categories)
    graph = load_model(args.model)
    q, _ = run_passes(graph, ["quantize"])
    if args.no_equalize:
        for node in q.nodes:
            if "equalize" in node.attrs:
                node.attrs["equalize"] = False
    if graph.inputs[0].type.size < split.features[0].size:  # a per-tick model: each file's frames from a reset
        size = graph.inputs[0].type.size
        frames = split.features.reshape(len(split.features), -1, size).transpose(1, 0, 2)
        frames = np.ascontiguousarray(frames, np.float32).reshape(frames.shape[:2] + tuple(graph.inputs[0].shape))
        runs = [Interpreter(g, batch_shape=(frames.shape[1],)).run(frames) for g in (graph, q)]
        want, got = (np.asarray(next(iter(r.values())) if isinstance(r, dict) else r) for r in runs)
        want, got = want.reshape(want.shape[:2] + (-1,)), got.reshape(got.shape[:2] + (-1,))
        a, b = want.argmax(axis=2), got.argmax(axis=2)
        labels = np.asarray(split.labels)
        n = len(labels)
        print(f"{args.model}: {n} files × {len(frames)} frames from a reset; at the last frame float32 "
              f"{(a[-1] == labels).mean() * 100:.1f} %, int8 {(b[-1] == labels).mean() * 100:.1f} %; argmax equal "
              f"on {(a == b).mean() * 100:.2f} % of frames; max |Δ output| {float(np.abs(got - want).max()):.3g}")
        return 0
    x = _windows(graph, split.features)
    want = Interpreter(graph).run(x)
    if args.calibrate:  # each int8 layer's input scale: the float model's largest (equalized) input over the split
        cal = _windows(graph, load_npz_dataset(args.calibrate, categories).features)
        probe = graph.copy()
        static = evaluate_static(probe)
        taps = {}
        for node in probe.nodes:
            if node.op in ("Conv", "Dense"):
                name = f"calibrate_{node.name}"
                probe.add_output(node.inputs[0], name=name)
                w = static[node.inputs[1]]
                eq = None
                if not args.no_equalize:
                    eq = (conv_channel_scales(w, node.attrs["group"]).reshape((-1,) + (1,) * (w.ndim - 2))
                          if node.op == "Conv" else column_scales(w))
                taps[node.name] = (name, eq)
        out = Interpreter(probe).run(cal)
        scales = {}
        for node, (name, eq) in taps.items():
            v = np.asarray(out[name], np.float32)
            if eq is not None:
                v = (v * eq).astype(np.float32)
            scales[node] = {"input_scale": float(np.float32(np.abs(v).max() / 127.0))}
        apply_scales(q, scales, "input")
    got = Interpreter(q).run(x)
    want = want if not isinstance(want, dict) else next(iter(want.values()))
    got = got if not isinstance(got, dict) else next(iter(got.values()))
    a = want.reshape(len(x), -1).argmax(axis=1)
    b = got.reshape(len(x), -1).argmax(axis=1)
    labels = np.asarray(split.labels)
    n = len(labels)
    print(f"{args.model}: {n} files; float32 {(a == labels).mean() * 100:.1f} % ({int((a == labels).sum())}/{n}); "
          f"int8 {(b == labels).mean() * 100:.1f} % ({int((b == labels).sum())}/{n}); argmax equal on "
          f"{int((a == b).sum())}/{n} files ({(a == b).mean() * 100:.1f} %); max |Δ output| "
          f"{float(np.abs(got - want).max()):.3g}"
          + ("; calibrated" if args.calibrate else "; run-time scales") + ("; no equalization" if args.no_equalize
                                                                           else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
