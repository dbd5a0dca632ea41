"""The pass registry and run_passes: cloning, verify after each pass, options, error wrapping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kwsc.errors import PassError
from kwsc.ir import Graph
from kwsc.passes import all_passes, run_passes
from kwsc.passes.manager import PASSES, PassResult, register_pass
from tests.passes.graphs import gru_classifier


def test_registry_lists_every_pass_with_doc_and_frozen_options():
    passes = all_passes()
    assert set(passes) == {"fold", "dce", "shapes", "add_vad", "reset_triggers", "fuse_featurizer", "fuse_dense",
                            "fold_batchnorm", "add_detector", "stream", "quantize"}
    for info in passes.values():
        assert info.doc and info.fn.__doc__ and "1." in info.fn.__doc__  # numbered rewrite rules
        assert info.options.__dataclass_params__.frozen
        assert dataclasses.is_dataclass(info.options())


def test_run_passes_clones_reports_and_accepts_dict_options():
    g = gru_classifier(features=8, hidden=4, classes=3)
    before = [n.name for n in g.nodes]
    out, report = run_passes(g, ["add_vad", "dce"], {"add_vad": {"tau_up": 1.5}})
    assert [n.name for n in g.nodes] == before  # input untouched
    assert [name for name, _ in report] == ["add_vad", "dce"]
    assert all(isinstance(r, PassResult) for _, r in report)
    assert out.find("VAD")[0].attrs["tau_up"] == 1.5


def test_errors_name_the_pass_and_what_ran_before():
    g = Graph("no_rnn")
    x = g.add_input([3])
    g.add_output(g.op1("Relu", x))
    with pytest.raises(PassError, match=r"pass 'add_vad' failed after \[fold, dce\]: .*no recurrent node"):
        run_passes(g, ["fold", "dce", "add_vad"])
    with pytest.raises(PassError, match="unknown pass 'nope'; known passes: fold"):
        run_passes(g, ["nope"])
    with pytest.raises(PassError, match="unknown option.*tau"):
        run_passes(g, ["fold"], {"fold": {"tau": 1}})
    with pytest.raises(PassError, match="not in the pipeline: add_vad"):
        run_passes(g, ["fold"], {"add_vad": {}})
    with pytest.raises(PassError, match="window_size"):
        run_passes(gru_classifier(features=8, hidden=4), ["add_vad"], {"add_vad": {"window_size": 0}})


def test_a_pass_leaving_an_invalid_graph_is_caught_by_verify():
    @dataclasses.dataclass(frozen=True)
    class Opts:
        pass

    @register_pass("_break_types", Opts)
    def _break(graph, options):
        """Corrupts an output type (test only)."""
        from kwsc.ir import TensorType

        graph.find("Relu")[0].outputs[0].type = TensorType((99,))
        return PassResult({"broken": 1})

    try:
        g = Graph("g")
        g.add_output(g.op1("Relu", g.add_input([3])))
        with pytest.raises(PassError, match=r"pass '_break_types' failed after \[\]: .*differ from inferred"):
            run_passes(g, ["_break_types"])
        # without check the broken graph comes back
        out, _ = run_passes(g, ["_break_types"], check=False)
        assert out.find("Relu")[0].outputs[0].shape == (99,)
    finally:
        PASSES.pop("_break_types")


def _zoo():
    from tests.passes.test_fold_constants import _graph as fold_graph
    from tests.passes.test_fuse_dense import _mlp
    from tests.passes.test_remove_shape_plumbing import _pytorch_like

    return [fold_graph(), _mlp(), _pytorch_like(), gru_classifier(features=5, hidden=3, op="LSTM"),
            gru_classifier(features=5, hidden=3, op="RNN", input_shape=(1, 5))]


@pytest.mark.parametrize("index", range(5))
def test_clean_up_pipeline_keeps_outputs_exactly_and_is_idempotent(index):
    from tests.passes.graphs import assert_same_outputs, frames

    graph = _zoo()[index]
    pipeline = ["shapes", "fold", "dce", "fuse_dense"]
    out, _ = run_passes(graph, pipeline)
    assert_same_outputs(graph, out, frames(graph, steps=7, seed=index))
    again, report = run_passes(out, pipeline)
    assert not any(r.modified for _, r in report), report
    assert [n.name for n in again.nodes] == [n.name for n in out.nodes]
