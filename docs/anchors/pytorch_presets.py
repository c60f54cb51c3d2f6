#!/usr/bin/env python3
"""The PyTorch anchor of `tessera bench model`: the same Llama/Mixtral-style presets, full training steps
(forward, backward, global-norm clip, AdamW) on random tokens, median tokens/s of the timed steps.

PyTorch 1.13 CPU as Debian ships it (apt-get install python3-torch: OpenBLAS). Its best setting on a
2-core machine is one intra-op thread with OpenBLAS on both cores (the default here); two intra-op threads
each calling a 2-thread BLAS run at half speed.

    python3 docs/anchors/pytorch_presets.py --preset dense|moe|wide [--steps 20] [--threads 1]
    python3 docs/anchors/pytorch_presets.py --preset dense --seq 8192 --batch 1 --steps 2 --warmup 2

The second form is the anchor of `tessera bench seq` (one process holding whole long sequences); its JSON adds the
process's peak resident memory.

Debian's python3-torch links the generic libblas.so.3; it runs on OpenBLAS only when an OpenBLAS package
provides that alternative (apt-get install libopenblas0-pthread). Without it every matmul runs on the
reference BLAS, 30x slower, so the script refuses to run.

Written the way a PyTorch user writes the model (separate projections, masked softmax attention, a loop
over experts), not tuned to Tessera's kernels.
"""
import argparse
import ctypes
import resource
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, LAYERS, HEADS, SEQ, BATCH = 256, 4, 8, 256, 8
PRESETS = {
    "dense": dict(d_model=256, d_ff=688, experts=0, expert_d_ff=0),
    "moe": dict(d_model=256, d_ff=0, experts=8, expert_d_ff=344),
    "wide": dict(d_model=512, d_ff=1376, experts=0, expert_d_ff=0),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):  # x [B, H, T, D], rotate-half RoPE
    x1, x2 = x.chunk(2, -1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d, bias=False) for _ in range(4))

    def forward(self, x, cos, sin, mask):
        b, t, d = x.shape
        hd = d // HEADS
        q, k, v = (p(x).view(b, t, HEADS, hd).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        return self.o_proj((att @ v).transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.gate_proj = nn.Linear(d, ff, bias=False)
        self.up_proj = nn.Linear(d, ff, bias=False)
        self.down_proj = nn.Linear(ff, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """Softmax top-2 router, renormalised weights (Mixtral), Switch load-balancing loss."""

    def __init__(self, d, experts, ff, top_k=2):
        super().__init__()
        self.gate = nn.Linear(d, experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(d, ff) for _ in range(experts))
        self.top_k = top_k

    def forward(self, x):
        b, t, d = x.shape
        x = x.reshape(-1, d)
        probs = self.gate(x).softmax(-1)
        weight, chosen = probs.topk(self.top_k, -1)
        weight = weight / weight.sum(-1, keepdim=True)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token, slot = (chosen == e).nonzero(as_tuple=True)
            if token.numel():
                out.index_add_(0, token, expert(x[token]) * weight[token, slot, None])
        routed = F.one_hot(chosen, len(self.experts)).float().mean((0, 1))
        aux = len(self.experts) * (routed * probs.mean(0)).sum()
        return out.view(b, t, d), aux


class Block(nn.Module):
    def __init__(self, p):
        super().__init__()
        d = p["d_model"]
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(d), RMSNorm(d)
        self.self_attn = Attention(d)
        self.moe = p["experts"] > 0
        self.mlp = MoE(d, p["experts"], p["expert_d_ff"]) if self.moe else SwiGLU(d, p["d_ff"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        if self.moe:
            y, aux = self.mlp(self.post_attention_layernorm(x))
            return x + y, aux
        return x + self.mlp(self.post_attention_layernorm(x)), x.new_zeros(())


class Decoder(nn.Module):
    def __init__(self, p):
        super().__init__()
        d = p["d_model"]
        self.embed_tokens = nn.Embedding(VOCAB, d)
        self.layers = nn.ModuleList(Block(p) for _ in range(LAYERS))
        self.norm = RMSNorm(d)
        self.lm_head = nn.Linear(d, VOCAB, bias=False)
        hd = d // HEADS
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
        angles = torch.outer(torch.arange(SEQ).float(), inv)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self.register_buffer("mask", torch.ones(SEQ, SEQ, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, tokens, targets):
        x = self.embed_tokens(tokens)
        aux = x.new_zeros(())
        for layer in self.layers:
            x, a = layer(x, self.cos, self.sin, self.mask)
            aux = aux + a
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1)) + 0.01 * aux


def require_openblas():
    """The OpenBLAS this process runs its matmuls on, and its kernel; exits 2 where the BLAS is not OpenBLAS."""
    torch.ones(2, 2) @ torch.ones(2, 2)
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line and "/" in line}
    openblas = sorted(p for p in paths if "openblas" in p)
    if not openblas:
        print("pytorch anchor: PyTorch's BLAS is not OpenBLAS (mapped: " + ", ".join(sorted(paths))
              + "); install it: apt-get install libopenblas0-pthread", file=sys.stderr)
        sys.exit(2)
    corename = ctypes.CDLL(openblas[0]).openblas_get_corename
    corename.restype = ctypes.c_char_p
    return corename().decode()


def timed_steps(model, opt, tokens, targets, warmup, steps):
    """Seconds of each full training step (forward, backward, clip, AdamW) after the first warmup."""
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        loss = model(tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main():
    global SEQ, BATCH
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (OpenBLAS keeps its own)")
    ap.add_argument("--seq", type=int, default=SEQ, help="tokens per sequence")
    ap.add_argument("--batch", type=int, default=BATCH, help="sequences per step")
    args = ap.parse_args()
    SEQ, BATCH = args.seq, args.batch
    torch.set_num_threads(args.threads)
    kernel = require_openblas()
    torch.manual_seed(0)
    model = Decoder(PRESETS[args.preset])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    data = torch.randint(0, VOCAB, (BATCH, SEQ + 1))
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    times = timed_steps(model, opt, tokens, targets, args.warmup, args.steps)
    median = statistics.median(times)
    print(json.dumps({"preset": args.preset, "seq": SEQ, "batch": BATCH,
                      "tokens_per_s": round(BATCH * SEQ / median, 1),
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "ms_per_step": round(1000 * median, 2), "steps": args.steps,
                      "params": sum(p.numel() for p in model.parameters()), "torch": torch.__version__, "openblas_kernel": kernel}))


if __name__ == "__main__":
    main()
