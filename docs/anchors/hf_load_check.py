#!/usr/bin/env python3
"""Loads an exported Tessera checkpoint as its config.json's Hugging Face architecture says, and prints the
mean cross-entropy of an independent forward pass over the given tokens.

    python3 docs/anchors/hf_load_check.py CHECKPOINT_DIR --tokens 1,2,3,... [--batch 1]

(Debian's `apt-get install python3-torch` installs PyTorch 1.13 for /usr/bin/python3; HfLoadCheckTest runs this
script with whichever python3 imports torch and compares the loss with Tessera's.)

Plain PyTorch + json + struct, no transformers: the forward pass is written from transformers'
modeling_llama.py, modeling_mixtral.py and modeling_qwen2_moe.py (RMSNorm, rotate-half RoPE, causal softmax
attention, SwiGLU MLPs; Mixtral's sparse block; Qwen2-MoE's sparse block with its shared expert and sigmoid
gate, q/k/v biases, mlp_only_layers and decoder_sparse_step), in float64. It reads every tensor the
architecture has by its Hugging Face name and fails on a missing or unexpected one, as a strict loader would.
Tokens are split into `batch` rows; row r predicts tokens[r][1:] from tokens[r][:-1].
"""
import argparse
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dtype, size = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).to(torch.float64)
    return out


def load(checkpoint):
    with open(os.path.join(checkpoint, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(checkpoint, "model.safetensors.index.json")) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(checkpoint, name)))
    return cfg, weights


class Weights:
    """Hands out tensors by name and remembers which were used, so unexpected ones are reported."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.used = set()

    def __call__(self, name):
        if name not in self.tensors:
            raise SystemExit(f"missing tensor {name}")
        self.used.add(name)
        return self.tensors[name]

    def check_all_used(self):
        unexpected = sorted(set(self.tensors) - self.used)
        if unexpected:
            raise SystemExit(f"unexpected tensors: {unexpected[:5]} ({len(unexpected)})")


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    x1, x2 = x.chunk(2, -1)
    return torch.cat((-x2, x1), -1)


def swiglu(x, gate, up, down):
    return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def sparse(x, w, p, experts, top_k, norm_topk, names):
    """Mixtral / Qwen2-MoE routing: softmax, top-k, optional renormalisation, weighted sum of experts."""
    logits = F.linear(x, w(p + "gate.weight"))
    probs = F.softmax(logits, dim=-1)
    weights, chosen = torch.topk(probs, top_k, dim=-1)
    if norm_topk:
        weights = weights / weights.sum(-1, keepdim=True)
    out = torch.zeros_like(x)
    for e in range(experts):
        g, u, d = (w(p + f"experts.{e}.{n}.weight") for n in names)
        y = swiglu(x, g, u, d)
        out = out + y * (weights * (chosen == e)).sum(-1, keepdim=True)
    return out


def forward(cfg, w, tokens):
    arch = cfg["model_type"]
    c, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    hd, eps = c // heads, cfg["rms_norm_eps"]
    b, t = tokens.shape
    x = F.embedding(tokens, w("model.embed_tokens.weight"))
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(t, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.ones(t, t, dtype=torch.bool).triu(1)
    for i in range(layers):
        p = f"model.layers.{i}."
        h = rms_norm(x, w(p + "input_layernorm.weight"), eps)
        bias = (lambda n: w(p + f"self_attn.{n}_proj.bias")) if arch == "qwen2_moe" else (lambda n: None)
        q, k, v = (F.linear(h, w(p + f"self_attn.{n}_proj.weight"), bias(n)).view(b, t, heads, hd).transpose(1, 2)
                   for n in ("q", "k", "v"))
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + F.linear((att @ v).transpose(1, 2).reshape(b, t, c), w(p + "self_attn.o_proj.weight"))
        h = rms_norm(x, w(p + "post_attention_layernorm.weight"), eps).reshape(b * t, c)
        if arch == "llama":
            y = swiglu(h, *(w(p + f"mlp.{n}_proj.weight") for n in ("gate", "up", "down")))
        elif arch == "mixtral":
            y = sparse(h, w, p + "block_sparse_moe.", cfg["num_local_experts"], cfg["num_experts_per_tok"], True,
                       ("w1", "w3", "w2"))
        elif arch == "qwen2_moe":
            is_sparse = (i not in cfg.get("mlp_only_layers", [])) and cfg["num_experts"] > 0 \
                and (i + 1) % cfg["decoder_sparse_step"] == 0
            if is_sparse:
                y = sparse(h, w, p + "mlp.", cfg["num_experts"], cfg["num_experts_per_tok"], cfg["norm_topk_prob"],
                           ("gate_proj", "up_proj", "down_proj"))
                shared = swiglu(h, *(w(p + f"mlp.shared_expert.{n}_proj.weight") for n in ("gate", "up", "down")))
                y = y + torch.sigmoid(F.linear(h, w(p + "mlp.shared_expert_gate.weight"))) * shared
            else:
                y = swiglu(h, *(w(p + f"mlp.{n}_proj.weight") for n in ("gate", "up", "down")))
        else:
            raise SystemExit(f"unknown model_type {arch}")
        x = x + y.reshape(b, t, c)
    x = rms_norm(x, w("model.norm.weight"), eps)
    return F.linear(x, w("lm_head.weight"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    cfg, tensors = load(args.checkpoint)
    w = Weights(tensors)
    tokens = torch.tensor([int(s) for s in args.tokens.split(",")], dtype=torch.long).view(args.batch, -1)
    logits = forward(cfg, w, tokens[:, :-1])
    w.check_all_used()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    print(f"{cfg['architectures'][0]} loss {loss.item():.17g}")


if __name__ == "__main__":
    main()
