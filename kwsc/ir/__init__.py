"""kwsc's graph IR: Graph/Node/Value/TensorType, the op registry and the ops' meaning, verify(), the .kwsc format.

Importing the package registers every op once: the op modules are loaded here, after the registry they fill
(``ops.py`` never imports them, so there is no import circle).
"""

from kwsc.ir.graph import Graph, Node, Use, Value
from kwsc.ir.ops import REGISTRY, Attr, OpDef, StateVar, get_op, op_names, ops_with_trait
from kwsc.ir import op_basic, op_conv, op_detect, op_dsp, op_nn, op_quant, op_stream  # noqa: F401,E402  (registration: every op, once)
from kwsc.ir.serialize import FORMAT_VERSION, load, save
from kwsc.ir.types import TensorType
from kwsc.ir.verify import verify

__all__ = [
    "Graph", "Node", "Value", "Use", "TensorType", "OpDef", "Attr", "StateVar", "REGISTRY", "get_op",
    "op_names", "ops_with_trait", "verify", "load", "save", "FORMAT_VERSION",
]
