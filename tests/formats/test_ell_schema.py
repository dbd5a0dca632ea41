"""The ELL schema is the one table behind both the .ell writer and reader: every node type and layer it lists has
a converter, every registered IR op is either written/read or refused with a reason, and the VAD's fields come
from the VAD op."""

from __future__ import annotations

import pytest

from kwsc.backends.ell import _Emitter
from kwsc.formats import ell_schema as schema
from kwsc.frontends.ell import CONVERTERS
from kwsc.frontends.ell_layers import LAYER_CONVERTERS
from kwsc.ir import get_op, op_names


def test_reader_has_a_converter_for_exactly_the_schemas_node_types_and_layers():
    assert set(CONVERTERS) == set(schema.NODE_TYPES)
    assert set(LAYER_CONVERTERS) == set(schema.LAYER_TYPES)
    assert not set(schema.LAYER_REFUSES) & set(schema.LAYER_TYPES)


def test_every_op_the_schema_names_is_registered():
    named = {op for t in schema.NODE_TYPES.values() for op in t.ops} | {op for t in schema.LAYER_TYPES.values()
                                                                          for op in t.ops}
    named |= set(schema.BINARY_OPERATIONS) | set(schema.UNARY_OPERATIONS) | set(schema.LAYER_ACTIVATIONS.values())
    assert named <= set(op_names())
    assert set(schema.ACTIVATION_CLASSES) <= set(get_op("GRU").attrs["activation"].choices)


@pytest.mark.parametrize("direction", ["writer", "reader"])
def test_every_registered_op_is_supported_or_refused_with_a_reason(direction):
    supported = schema.writer_ops() if direction == "writer" else schema.reader_ops()
    refused = schema.WRITER_REFUSES if direction == "writer" else schema.READER_REFUSES
    assert not set(supported) & set(refused), "an op cannot be both supported and refused"
    unclassified = sorted(set(op_names()) - set(supported) - set(refused))
    assert not unclassified, f"ELL {direction}: add these ops to the schema or to its refusal table: {unclassified}"
    assert set(supported) | set(refused) <= set(op_names())
    assert all(reason.strip() for reason in refused.values())


def test_every_op_the_writer_claims_has_a_handler():
    for op in schema.writer_ops():
        handled = (op == "Constant" or op in schema.BINARY_OPERATIONS or op in schema.UNARY_OPERATIONS
                   or hasattr(_Emitter, f"op_{op}"))
        assert handled, op


def test_vad_fields_are_the_vad_ops_attributes_in_ells_order():
    assert list(schema.VAD_FIELDS) == ["sampleRate", "frameDuration", "tauUp", "tauDown", "largeInput", "gainAtt",
                                       "thresholdUp", "thresholdDown", "levelThreshold"]
    assert set(schema.VAD_FIELDS.values()) == set(get_op("VAD").attrs)
    assert schema.OBJECTS["VoiceActivityDetector"].fields == ("windowSize", *schema.VAD_FIELDS)


def test_era_of_a_file():
    assert schema.ell_era("DynamicMap", [], False).startswith("ELL 2.1 or older")
    assert schema.ell_era("Map", ["GRULayer<float,TanhActivation,SigmoidActivation>"], False).startswith("ELL 2.1–")
    assert schema.ell_era("Map", ["InputNode<float>"], True).startswith("ELL 2.1–")
    assert schema.ell_era("Map", ["VoiceActivityDetectorNode<float>"], False).startswith("ELL 2.3 ")
    assert schema.ell_era("Map", ["GRUNode<float>", "ActivationLayer<float>"], False) == "ELL 2.3.7 or newer"
