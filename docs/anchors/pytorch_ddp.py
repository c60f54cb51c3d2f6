#!/usr/bin/env python3
"""The PyTorch anchor of `tessera bench train --dp N`: the presets of pytorch_presets.py trained with
DistributedDataParallel over gloo, N processes on this host, each bound to one core with one intra-op
thread and a one-thread OpenBLAS (PyTorch's best on a 2-core machine: two one-core DDP processes beat one
two-core process). Global batch 8 x 256 tokens split over the processes, as the bench; median tokens/s of
the global batch over the timed steps after the warm-up.

    python3 docs/anchors/pytorch_ddp.py --preset dense [--procs 2] [--steps 20] [--warmup 30]
"""
import argparse
import json
import os
import socket
import statistics
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read when OpenBLAS loads, in this process and in the children

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_presets import BATCH, PRESETS, SEQ, VOCAB, Decoder, require_openblas, timed_steps  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(rank, args, port, results):
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[rank % len(cores)]})
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.procs)
    torch.manual_seed(0)
    decoder = Decoder(PRESETS[args.preset])
    # gloo cannot broadcast the bool mask; the constant buffers are equal on every rank (same seed, no state)
    DDP._set_params_and_buffers_to_ignore_for_model(decoder, ["cos", "sin", "mask"])
    model = DDP(decoder, broadcast_buffers=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    local = BATCH // args.procs
    g = torch.Generator().manual_seed(rank)
    data = torch.randint(0, VOCAB, (local, SEQ + 1), generator=g)
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    times = timed_steps(model, opt, tokens, targets, args.warmup, args.steps)
    dist.destroy_process_group()
    results[rank] = statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), default="dense")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=30)
    args = ap.parse_args()
    if BATCH % args.procs:
        ap.error(f"--procs must divide the global batch {BATCH}")
    kernel = require_openblas()
    results = mp.Manager().dict()
    mp.spawn(train, args=(args, free_port(), results), nprocs=args.procs, join=True)
    median = max(results.values())  # the slowest rank sets the pace of a synchronous step
    print(json.dumps({"preset": args.preset, "procs": args.procs, "tokens_per_s": round(BATCH * SEQ / median, 1),
                      "ms_per_step": round(1000 * median, 2), "steps": args.steps, "torch": torch.__version__,
                      "openblas_kernel": kernel}))


if __name__ == "__main__":
    main()
