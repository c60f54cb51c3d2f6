package dev.tessera.worker.job;

import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.SequenceScheme;

/**
 * {@code mesh:} data-, sequence- and expert-parallel degrees; the world size is {@code dp x sp}. The default is
 * two data-parallel workers, so that {@code tessera train} runs a real local cluster. {@code sp_mode} is how
 * attention crosses the sequence-parallel ranks when {@code sp > 1}.
 */
public record MeshSection(int dp, int sp, int ep, SequenceScheme spMode) {

    public static MeshSection defaults() {
        return new MeshSection(2, 1, 1, SequenceScheme.ALLGATHER);
    }

    public int world() {
        return dp * sp;
    }

    /** Only for a validated config. */
    public Mesh toMesh() {
        return new Mesh(dp, sp, ep);
    }
}
