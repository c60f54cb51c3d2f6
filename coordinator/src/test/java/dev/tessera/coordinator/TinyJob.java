package dev.tessera.coordinator;

import java.util.ArrayList;
import java.util.List;

/** A job small enough to train in about a second, in this process: 2 layers (one MoE), batch 2, seq 16. */
final class TinyJob {

    private TinyJob() {
    }

    /** The job as key=value settings. */
    static List<String> sets() {
        return List.of("model.d_model=16", "model.n_layers=2", "model.n_heads=2", "model.d_ff=32",
                "model.n_experts=4", "model.top_k=2", "model.moe_every=2", "model.expert_d_ff=16",
                "train.steps=8", "train.batch_size=2", "train.seq_len=16", "optimizer.warmup_steps=2",
                "eval.every=4", "eval.batches=2", "checkpoint.every=4", "mesh.dp=1");
    }

    /** {@code tessera train} arguments of the job, then {@code extra}. */
    static List<String> trainArgs(String... extra) {
        List<String> args = new ArrayList<>(List.of("train"));
        for (String set : sets()) {
            args.add("--set");
            args.add(set);
        }
        args.addAll(List.of(extra));
        return args;
    }
}
