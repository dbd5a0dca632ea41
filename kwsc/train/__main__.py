"""``python -m kwsc.train`` — the ``kwsc train`` options, for ``torchrun --nproc_per_node N -m kwsc.train …``.

Under torchrun every process runs this; the trainer joins the process group (gloo on CPU, nccl on CUDA), wraps
the model in DistributedDataParallel and lets rank 0 write the outputs.
"""

from __future__ import annotations

import argparse
import os
import sys

from kwsc.errors import KwscError


def main(argv: list[str] | None = None) -> int:
    from kwsc.train.options import add_train_arguments, resolve_config
    from kwsc.train.pipeline import settle_defaults, train

    parser = argparse.ArgumentParser(prog="python -m kwsc.train", description="kwsc train (torchrun entry point)")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config, applied = resolve_config(args)
        main_process = os.environ.get("RANK", "0") == "0"  # torchrun: every process resolves, rank 0 says so
        settle_defaults(config, applied, args.outdir, args.resume, echo=print if main_process else lambda *a: None)
        train(config, args.dataset, args.outdir, args.categories, resume=args.resume,
              progress=not args.no_progress, opset=args.opset, export=not args.no_export)
    except KwscError as exc:
        print(f"kwsc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
