"""Which models and data go together: featurizer, classifier, dataset and categories, checked before any work.

Every check raises one ``InputError`` line naming both sides and what differs, e.g.
``featurizer f.ell gives 40 features per frame but classifier KeywordSpotter/model takes 80``. A model is described
by what any runner knows — input and output sizes, metadata, and the graph when there is one (a compiled C library
has none) — so the same checks serve ``.kwsc``/``.ell``/``.onnx`` files and compiled modules.

Example::

    require_featurizer(featurizer.graph, featurizer.metadata, "compiled_featurizer/mfcc")
    check_frames(featurizer.output_size, "compiled_featurizer/mfcc", classifier.input_size, "KeywordSpotter/model")
    check_categories(classifier.output_size, "KeywordSpotter/model", labels, "categories.txt")
"""

from __future__ import annotations

from typing import Any, Sequence

from kwsc.errors import InputError
from kwsc.ir import Graph

__all__ = ["model_kind", "describe", "require_featurizer", "require_classifier", "check_frames", "check_categories",
           "check_dataset"]

_CLASSIFIER_OPS = ("GRU", "LSTM", "RNN", "Dense", "Softmax", "LogSoftmax")


def model_kind(graph: Graph | None, metadata: dict[str, Any]) -> str:
    """``featurizer``, ``classifier``, ``fused`` (audio in, scores out) or ``unknown``."""
    kind = str(metadata.get("model_kind", ""))
    if kind in ("featurizer", "fused"):
        return kind
    if graph is None:
        return kind or "unknown"
    ops = {n.op for n in graph.nodes}
    has_classifier = bool(ops & set(_CLASSIFIER_OPS))
    has_featurizer = bool(ops & {"FFT", "MelFilterBank", "LinearFilterBank"})
    if has_classifier:
        return "fused" if has_featurizer else "classifier"
    return "featurizer" if has_featurizer else "unknown"


def describe(graph: Graph | None, input_size: int, output_size: int) -> str:
    """``GRU(128), GRU(128); 80 values in → 3 out`` — enough for a user to recognise the model."""
    layers = []
    if graph is not None:
        layers = [f"{n.op}({n.attrs['hidden_size']})" if "hidden_size" in n.attrs else n.op
                  for n in graph.nodes if n.op in ("GRU", "LSTM", "RNN", "Dense")]
    return f"{', '.join(layers) + '; ' if layers else ''}{input_size} values in → {output_size} out"


def require_featurizer(graph: Graph | None, metadata: dict[str, Any], where: str, input_size: int,
                       output_size: int, option: str = "--featurizer") -> None:
    """The model must turn audio into feature frames (not classify them)."""
    kind = model_kind(graph, metadata)
    if kind in ("classifier", "fused"):
        what = "a classifier" if kind == "classifier" else "a fused model (audio in, scores out)"
        raise InputError(f"{option} {where} is {what} ({describe(graph, input_size, output_size)}), not a featurizer; "
                         f"give the audio featurizer (make_featurizer's featurizer.ell, or its wrapped module)")


def require_classifier(graph: Graph | None, metadata: dict[str, Any], where: str, input_size: int,
                       output_size: int, option: str = "--classifier") -> None:
    """The model must score frames: a featurizer given as the classifier is refused."""
    if model_kind(graph, metadata) == "featurizer":
        raise InputError(f"{option} {where} is a featurizer ({describe(graph, input_size, output_size)}), not a "
                         f"classifier; give the trained model (e.g. GRU128KeywordSpotter.ell or its wrapped module)")


def check_frames(features: int, featurizer: str, classifier_input: int, classifier: str) -> None:
    """The featurizer's frame must be the classifier's input."""
    if features != classifier_input:
        raise InputError(f"featurizer {featurizer} gives {features} features per frame but classifier {classifier} "
                         f"takes {classifier_input}: they were not made for each other (check --filterbank_size)")


def check_categories(outputs: int, classifier: str, labels: Sequence[str], source: str) -> None:
    """One category per classifier output."""
    if outputs != len(labels):
        raise InputError(f"{source} has {len(labels)} categories but classifier {classifier} has {outputs} outputs: "
                         f"give the categories.txt the model was trained with")


def check_dataset(parameters: Sequence[float], dataset: str, *, featurizer: tuple[int, int, int] | None = None,
                  featurizer_name: str = "", classifier_input: int | None = None, classifier: str = "",
                  row_size: int | None = None) -> None:
    """A dataset's ``parameters`` (sample_rate, audio per frame, features per frame, window, shift) against a
    featurizer ``(sample_rate, input_size, output_size)`` and a classifier input size."""
    rate, chunk, features = (int(round(float(v))) for v in parameters[:3])
    if featurizer is not None:
        f_rate, f_chunk, f_features = featurizer
        if (rate, chunk, features) != (f_rate, f_chunk, f_features):
            raise InputError(f"dataset {dataset} was made with {features} features per {chunk} samples at {rate} Hz "
                             f"but featurizer {featurizer_name} gives {f_features} per {f_chunk} at {f_rate} Hz")
    if classifier_input is not None:
        if features != classifier_input:
            raise InputError(f"dataset {dataset} has {features} features per frame but classifier {classifier} takes "
                             f"{classifier_input}")
        if row_size is not None and row_size % classifier_input:
            raise InputError(f"dataset {dataset} rows hold {row_size} values, not a whole number of "
                             f"{classifier_input}-value frames for classifier {classifier}")
