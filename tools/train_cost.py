"""Per-epoch cost of `kwsc train` option sets, measured alternately in one process (fair on a shared, loaded CPU).

    python tools/train_cost.py --rounds 3 --arm "--stream_training 0" --arm "--stream_training 1" -- \\
        --dataset data --wav_files $S --outdir unused --threads 1

Each ``--arm`` is a string of extra `kwsc train` options added to the common ones after ``--``; every arm gets its own
training run (model, optimizer, data, generators) and the rounds run one epoch of each, in turn, the order reversed
every other round (A B, B A, …), so a change in the machine's load falls on all arms alike. An epoch is what `kwsc
train` times: the training batches plus the per-epoch validation score. Prints each epoch (wall seconds of training
and validation, process CPU seconds, loss, accuracy) and per arm the median epoch and its ratio to the first arm.
The arms share torch's global random generator (dropout), so their losses are not those of separate `kwsc train`
runs; the cost is.

``--split`` (an arm with ``--stream_training`` on a GRU/LSTM): instead, where one such epoch's time goes — the batch
(waveforms, augmentation), the rows' and the sequences' forward and backward passes, building the sequences, the
optimizer, the validation — after one warm-up epoch. The two losses' backward passes run one after the other for
timing, so that epoch's numbers are not a training run's either.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _prepare(common: list[str], extra: str, outdir: Path):
    from kwsc.train.options import add_train_arguments, config_from_args
    from kwsc.train.trainer import prepare

    parser = argparse.ArgumentParser(prog="kwsc train")
    add_train_arguments(parser)
    args = parser.parse_args(common + extra.split())
    return prepare(config_from_args(args), args.dataset, outdir, args.categories)


def _epoch(run) -> tuple[float, float, float, float, float]:
    """One epoch as `fit` runs it: (train s, validation s, CPU s, loss, accuracy)."""
    from kwsc.train.trainer import _train_epoch, ema_weights, evaluate, per_file

    cpu, start = time.process_time(), time.perf_counter()
    loss = _train_epoch(run, False)
    trained = time.perf_counter()
    x, y = run.tensors["validation"]
    with ema_weights(run):
        accuracy, _ = evaluate(run.model, x, y, per_file=per_file(run))
    end = time.perf_counter()
    run.epoch += 1
    return trained - start, end - trained, time.process_time() - cpu, loss, accuracy


def compare(common: list[str], arms: list[str], rounds: int, outdir: Path, echo=print) -> dict[str, list[float]]:
    """Epochs of every arm, alternated; returns each arm's epoch wall times (training + validation)."""
    runs = [(arm, _prepare(common, arm, outdir / f"arm{i}")) for i, arm in enumerate(arms)]
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    for r in range(rounds):
        for arm, run in runs if r % 2 == 0 else runs[::-1]:
            train, validation, cpu, loss, accuracy = _epoch(run)
            times[arm].append(train + validation)
            echo(f"[{arm or 'defaults'}] epoch {run.epoch}: train {train:.2f} s, validation {validation:.2f} s, "
                 f"cpu {cpu:.2f} s, loss {loss:.6f}, accuracy {accuracy * 100:.3f} %")
    first = statistics.median(times[arms[0]])
    for arm in arms:
        median = statistics.median(times[arm])
        echo(f"{arm or 'defaults'}: median epoch {median:.2f} s (min {min(times[arm]):.2f}), "
             f"{median / first:.2f}x the first arm")
    return times


def split(common: list[str], arm: str, outdir: Path, echo=print) -> dict[str, float]:
    """Seconds per part of one stream-trained epoch (after a warm-up epoch); GRU/LSTM only."""
    import torch

    from kwsc.train.trainer import evaluate, per_file

    run = _prepare(common, arm, outdir / "split")
    st, net = run.stream_training, run.ddp_model or run.model
    if st is None or run.window_stream is not None:
        raise SystemExit("--split needs an arm with --stream_training on a GRU/LSTM model")
    parts: dict[str, float] = {}
    for epoch in range(2):
        rows = len(run.waveforms) if run.waveforms is not None else len(run.tensors["training"][0])
        order = torch.randperm(rows, generator=run.generators["order"], device=run.device)
        for tick in range(run.ticks):
            stamps = [time.perf_counter()]
            index = order[tick * run.batch_size:(tick + 1) * run.batch_size]
            if run.waveforms is not None:
                x, y = run.waveforms.batch(index, run.generators["augment"]), run.waveforms.labels[index]
            else:
                x, y = run.tensors["training"][0][index], run.tensors["training"][1][index]
            if run.augmenter.active:
                x = run.augmenter(x, run.generators["augment"])
            stamps.append(time.perf_counter())
            row_loss = st.row_loss(net, x, y)
            stamps.append(time.perf_counter())
            batch = st.build(x, y, run.generators["augment"])
            stamps.append(time.perf_counter())
            log_probs, states = net(batch.features.to(x.dtype), st._start_states(run.generators["augment"]),
                                    st.length)
            st.states = [tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
                         for state in states]
            stream_loss = st.frame_losses(log_probs, batch)
            stamps.append(time.perf_counter())
            run.optimizer.zero_grad(set_to_none=True)
            stream_loss.backward()
            stamps.append(time.perf_counter())
            row_loss.backward()
            stamps.append(time.perf_counter())
            run.optimizer.step()
            stamps.append(time.perf_counter())
            if epoch:
                for name, a, b in zip(("batch (waveforms, augmentation)", "rows forward + loss", "sequence build",
                                       "sequences forward + loss", "sequences backward", "rows backward",
                                       "optimizer"), stamps, stamps[1:]):
                    parts[name] = parts.get(name, 0.0) + b - a
        start = time.perf_counter()
        x, y = run.tensors["validation"]
        evaluate(run.model, x, y, per_file=per_file(run))
        if epoch:
            parts["validation (kwsc test's rule)"] = time.perf_counter() - start
    total = sum(parts.values())
    for name, seconds in parts.items():
        echo(f"{name:32s} {seconds:7.2f} s {100 * seconds / total:6.1f} %")
    echo(f"{'epoch':32s} {total:7.2f} s")
    return parts


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: python tools/train_cost.py [--rounds N] [--split] --arm OPTIONS [--arm OPTIONS ...] -- "
              "KWSC_TRAIN_OPTIONS (the common `kwsc train` options, after --)", file=sys.stderr)
        return 2
    cut = argv.index("--")
    parser = argparse.ArgumentParser(prog="tools/train_cost.py")
    parser.add_argument("--arm", action="append", default=[], help="extra kwsc train options of one arm (repeat)")
    parser.add_argument("--rounds", type=int, default=3, help="epochs per arm (default 3)")
    parser.add_argument("--split", action="store_true", help="where one epoch of the (single) stream arm goes")
    args = parser.parse_args(argv[:cut])
    arms = args.arm or [""]
    with tempfile.TemporaryDirectory(prefix="train_cost_") as tmp:
        if args.split:
            split(argv[cut + 1:], arms[0], Path(tmp))
        else:
            compare(argv[cut + 1:], arms, max(1, args.rounds), Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
