#!/usr/bin/env python3
"""The PyTorch anchor of `tessera bench compression`: pytorch_ddp.py's DDP run (dense preset, global batch 8 x 256,
one one-core process per rank) with each rank on a host of its own, a network namespace joined to a bridge by a
veth limited to --rate in both directions, exactly as Tessera's launch.NamespaceHosts makes them (198.18.0.0/15,
`tc tbf` on both ends, a bucket of 10 ms of the rate and at least 64 KB, a 1 s queue). gloo's TCP crosses the veths.

    python3 docs/anchors/pytorch_ddp_hosts.py --rate 100mbit|1gbit|none [--hook none|fp16|powersgd] [--steps 20]

--hook is DDP's communication hook: none (fp32 all-reduce), fp16 (gradients halved to fp16 on the wire) or
powersgd (PowerSGD rank 4, error feedback and warm start, after one plain step). Needs root (namespaces); removes
what it made, also when a rank fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SUBNET = "198.19.250"
BRIDGE = f"tpb{os.getpid() % 100000}"


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def bits_per_second(rate):
    units = {"gbit": 10**9, "mbit": 10**6, "kbit": 10**3, "bit": 1}
    for unit, scale in units.items():
        if rate.endswith(unit):
            return int(rate[: -len(unit)]) * scale
    raise SystemExit(f"--rate {rate}: expected a number and bit, kbit, mbit or gbit, as 100mbit")


def limit(prefix, device, rate):
    burst = max(64 * 1024, bits_per_second(rate) // 8 // 100)
    sh(*prefix, "tc", "qdisc", "add", "dev", device, "root", "tbf", "rate", rate, "burst", f"{burst}b",
       "latency", "1s")


def make_hosts(names, ranks, rate):
    """Appends each namespace to names as soon as it exists, so a failure part-way still removes it."""
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for r in range(ranks):
        ns, veth = f"{BRIDGE}-r{r}", f"{BRIDGE}v{r}"
        sh("ip", "netns", "add", ns)
        names.append(ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", veth, "master", BRIDGE)
        sh("ip", "link", "set", veth, "up")
        sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.{r + 2}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        if rate != "none":
            limit([], veth, rate)
            limit(["ip", "netns", "exec", ns], "eth0", rate)


def remove_hosts(names):
    for ns in names:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)


def rank_main(args):
    """One rank, inside its namespace: DDP over gloo to rank 0's address, median step seconds to --out."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["GLOO_SOCKET_IFNAME"] = "eth0"
    import statistics
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    sys.path.insert(0, HERE)
    from pytorch_presets import BATCH, PRESETS, SEQ, VOCAB, Decoder, timed_steps

    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[args.rank % len(cores)]})
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{SUBNET}.2:29533", rank=args.rank,
                            world_size=args.procs)
    torch.manual_seed(0)
    decoder = Decoder(PRESETS["dense"])
    DDP._set_params_and_buffers_to_ignore_for_model(decoder, ["cos", "sin", "mask"])
    model = DDP(decoder, broadcast_buffers=False)
    if args.hook == "fp16":
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        model.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif args.hook == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook
        state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=4,
                                            start_powerSGD_iter=2, use_error_feedback=True, warm_start=True)
        model.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    local = BATCH // args.procs
    g = torch.Generator().manual_seed(args.rank)
    data = torch.randint(0, VOCAB, (local, SEQ + 1), generator=g)
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    times = timed_steps(model, opt, tokens, targets, args.warmup, args.steps)
    dist.destroy_process_group()
    with open(args.out, "w") as f:
        f.write(str(statistics.median(times)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", default="100mbit", help="tc rate of each rank's link, or none")
    ap.add_argument("--hook", choices=["none", "fp16", "powersgd"], default="none")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank is not None:
        rank_main(args)
        return
    if args.rate != "none":
        bits_per_second(args.rate)
    if os.geteuid() != 0:
        raise SystemExit("pytorch_ddp_hosts.py: network namespaces need root")
    names = []
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            make_hosts(names, args.procs, args.rate)
            for r, ns in enumerate(names):
                cmd = ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--rank", str(r),
                       "--procs", str(args.procs), "--hook", args.hook, "--steps", str(args.steps),
                       "--warmup", str(args.warmup), "--out", os.path.join(tmp, f"rank{r}")]
                procs.append(subprocess.Popen(cmd))
            codes = [p.wait(timeout=1800) for p in procs]
            if any(codes):
                raise SystemExit(f"pytorch_ddp_hosts.py: ranks exited {codes}")
            median = max(float(open(os.path.join(tmp, f"rank{r}")).read()) for r in range(args.procs))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            remove_hosts(names)
    import torch
    sys.path.insert(0, HERE)
    from pytorch_presets import BATCH, SEQ
    print(json.dumps({"preset": "dense", "procs": args.procs, "rate": args.rate, "hook": args.hook,
                      "tokens_per_s": round(BATCH * SEQ / median, 1), "ms_per_step": round(1000 * median, 2),
                      "steps": args.steps, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
