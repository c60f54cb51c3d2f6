package dev.tessera.worker.checkpoint;

import java.nio.file.Path;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** File and folder names of a checkpoint, in one place so writers, readers and tools agree. */
public final class CheckpointLayout {

    public static final String CHECKPOINTS = "checkpoints";
    public static final String CONFIG = "config.json";
    public static final String MODEL_INDEX = "model.safetensors.index.json";
    public static final String TRAINER_STATE = "trainer_state.json";
    public static final String MANIFEST = "manifest.json";
    public static final String OPTIMIZER_DIR = "optimizer";
    public static final String COMPRESSION_DIR = "compression";
    public static final String CO2_DIR = "co2";

    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d{7,18})");

    private CheckpointLayout() {
    }

    /** {@code step-0000100}: seven digits, so names sort by step up to ten million steps. */
    public static String dirName(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("negative step " + step);
        }
        return String.format("step-%07d", step);
    }

    public static Path checkpointsDir(Path runDir) {
        return runDir.resolve(CHECKPOINTS);
    }

    public static Path checkpointDir(Path runDir, long step) {
        return checkpointsDir(runDir).resolve(dirName(step));
    }

    /** The step of a {@code step-NNNNNNN} name; empty for anything else (temporary folders included). */
    public static OptionalLong parseStep(String dirName) {
        Matcher m = STEP_DIR.matcher(dirName);
        return m.matches() ? OptionalLong.of(Long.parseLong(m.group(1))) : OptionalLong.empty();
    }

    /** {@code model-00001-of-00003.safetensors}, shard 0-based. */
    public static String modelShard(int shard, int shardCount) {
        if (shard < 0 || shard >= shardCount) {
            throw new IllegalArgumentException("shard " + shard + " of " + shardCount);
        }
        return String.format("model-%05d-of-%05d.safetensors", shard + 1, shardCount);
    }

    /** {@code optimizer/rank-00000.safetensors} (relative, '/'-separated as in the manifest). */
    public static String optimizerShard(int rank) {
        if (rank < 0) {
            throw new IllegalArgumentException("negative rank " + rank);
        }
        return String.format("%s/rank-%05d.safetensors", OPTIMIZER_DIR, rank);
    }

    /** {@code compression/rank-00000.safetensors}: a rank's gradient-compression state (its error feedback). */
    public static String compressionState(int rank) {
        if (rank < 0) {
            throw new IllegalArgumentException("negative rank " + rank);
        }
        return String.format("%s/rank-%05d.safetensors", COMPRESSION_DIR, rank);
    }

    /**
     * {@code co2/rank-00000.safetensors}: a CO2 rank's local parameters, its outer state and the finished average
     * its next round end applies.
     */
    public static String co2State(int rank) {
        if (rank < 0) {
            throw new IllegalArgumentException("negative rank " + rank);
        }
        return String.format("%s/rank-%05d.safetensors", CO2_DIR, rank);
    }
}
