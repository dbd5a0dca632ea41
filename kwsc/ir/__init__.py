"""kwsc's graph IR: Graph/Node/Value/TensorType, the op registry, verify(), and the native .kwsc format."""

from kwsc.ir.graph import Graph, Node, Use, Value
from kwsc.ir.ops import REGISTRY, Attr, OpDef, StateVar, get_op, op_names, ops_with_trait
from kwsc.ir.serialize import FORMAT_VERSION, load, save
from kwsc.ir.types import TensorType
from kwsc.ir.verify import verify

__all__ = [
    "Graph", "Node", "Value", "Use", "TensorType", "OpDef", "Attr", "StateVar", "REGISTRY", "get_op",
    "op_names", "ops_with_trait", "verify", "load", "save", "FORMAT_VERSION",
]
