package dev.tessera.coordinator.config;

import dev.tessera.worker.job.Dtype;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.model.RecomputePolicy;
import dev.tessera.worker.parallel.MemoryEstimate;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.SequenceScheme;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A job's memory plan: what its per-worker estimate depends on ({@link #job}), and for the planner's refusal the
 * smallest change that makes it fit: first what costs no hardware and little speed (a higher ZeRO stage), then
 * recomputation (activation checkpointing: a third more arithmetic), then both, then more workers (hardware):
 * sequence-parallel ones first, then data-parallel ones, each with the cheaper changes again.
 */
public final class MemoryPlan {

    private MemoryPlan() {
    }

    /** What the memory estimate of {@code config} depends on; each local worker gets its share of the cores. */
    public static MemoryEstimate.Job job(JobConfig config) {
        int world = config.mesh().toMesh().world();
        return new MemoryEstimate.Job(config.toModelConfig(),
                config.model().dtype() == Dtype.FLOAT64 ? DataType.DOUBLE : DataType.FLOAT, config.mesh().toMesh(),
                config.train().batchSize(), config.train().seqLen(), config.optimizer().toSpec(),
                config.zero().stage(), config.train().recomputePolicy(),
                Math.max(1, Runtime.getRuntime().availableProcessors() / world), config.mesh().spMode(),
                config.moe().overlap());
    }

    /** One candidate: the settings to write and the job they give. */
    private record Change(String settings, MemoryEstimate.Job job) {
    }

    /** A sentence for the refusal: the first candidate that fits under {@code limit} bytes, or what memory would. */
    static String smallestChange(MemoryEstimate.Job job, BigInteger limit, MemoryEstimate current) {
        for (Change c : candidates(job)) {
            BigInteger need = MemoryEstimate.of(c.job()).total();
            if (need.compareTo(limit) <= 0) {
                return String.format(Locale.ROOT, "the smallest change that fits is %s (about %d MB per worker),"
                        + " or raise launch.worker_memory_mb to %d", c.settings(), need.shiftRight(20),
                        current.total().shiftRight(20).add(BigInteger.ONE));
            }
        }
        return String.format(Locale.ROOT, "no ZeRO stage, activation checkpointing, sequence-parallel width up to"
                + " train.seq_len or data-parallel width up to train.batch_size fits; raise launch.worker_memory_mb to %d, or lower train.batch_size,"
                + " train.seq_len or the model size", current.total().shiftRight(20).add(BigInteger.ONE));
    }

    private static List<Change> candidates(MemoryEstimate.Job job) {
        List<Change> out = new ArrayList<>();
        addOnMesh(out, job, "");
        Mesh mesh = job.mesh();
        int perWorkerCores = job.kernelThreads() * mesh.world();
        // Wider sequence parallelism first: a sequence that does not fit is the case it is for.
        for (int sp = mesh.sp() * 2; sp <= job.seq(); sp *= 2) {
            if (job.seq() % job.sequence().partsOf(sp) != 0 || (job.sequence() == SequenceScheme.ULYSSES
                    && job.model().nHeads() % sp != 0)) {
                continue;
            }
            Mesh wider = new Mesh(mesh.dp(), sp, mesh.ep());
            MemoryEstimate.Job j = job.withMesh(wider, Math.max(1, perWorkerCores / wider.world()));
            String settings = "mesh.sp: " + sp;
            out.add(new Change(settings, j));
            addOnMesh(out, j, settings + ", ");
        }
        for (int dp = mesh.dp() * 2; dp <= job.globalBatch(); dp *= 2) {
            if (job.globalBatch() % dp != 0) {
                continue;
            }
            Mesh wider = new Mesh(dp, mesh.sp(), mesh.ep());
            MemoryEstimate.Job j = job.withMesh(wider, Math.max(1, perWorkerCores / wider.world()));
            String settings = "mesh.dp: " + dp;
            out.add(new Change(settings, j));
            addOnMesh(out, j, settings + ", ");
        }
        return out;
    }

    /** On one mesh: each higher ZeRO stage, checkpointing every block, and both. */
    private static void addOnMesh(List<Change> out, MemoryEstimate.Job job, String prefix) {
        boolean sharded = job.mesh().world() > 1;
        if (sharded) {
            for (int stage = job.zeroStage() + 1; stage <= 3; stage++) {
                out.add(new Change(prefix + "zero.stage: " + stage, job.withZeroStage(stage)));
            }
        }
        if (!job.recompute().equals(RecomputePolicy.EVERY_BLOCK)) {
            MemoryEstimate.Job recomputing = job.withRecompute(RecomputePolicy.EVERY_BLOCK);
            out.add(new Change(prefix + "train.activation_checkpointing: blocks", recomputing));
            if (sharded && job.zeroStage() < 3) {
                out.add(new Change(prefix + "zero.stage: 3, train.activation_checkpointing: blocks",
                        recomputing.withZeroStage(3)));
            }
        }
    }
}
