"""Graph passes: one module per pass, registered by name; ``run_passes(graph, ["fold", "dce", …])``.

Passes: ``fold`` (fold_constants), ``dce`` (eliminate_dead_nodes), ``shapes`` (remove_shape_plumbing),
``add_vad`` (insert_vad), ``reset_triggers`` (rewire_reset_trigger), ``fuse_featurizer``, ``fuse_dense``, ``fold_batchnorm``,
``add_detector``.
"""

from kwsc.passes.manager import (PASSES, NoOptions, PassInfo, PassResult, all_passes, get_pass, register_pass,
                                 run_pass, run_passes)

__all__ = ["PASSES", "PassInfo", "PassResult", "NoOptions", "register_pass", "get_pass", "all_passes",
           "run_pass", "run_passes"]
