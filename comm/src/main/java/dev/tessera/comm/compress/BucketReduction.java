package dev.tessera.comm.compress;

import dev.tessera.comm.ProcessGroup;
import org.agrona.MutableDirectBuffer;

/**
 * How one gradient bucket is summed over a group in compressed form. It runs on the group's background thread
 * ({@link ProcessGroup#runAsync}) with the group's blocking collectives, and keeps its error-feedback residual
 * (and any other state) between rounds.
 */
public interface BucketReduction {

    /** Replaces {@code bucket} (float32) with the sum over the group of the members' decoded buckets. */
    void reduce(ProcessGroup group, MutableDirectBuffer bucket, long round);

    /** The error-feedback residual of the encoded layers, one float32 per element; a checkpoint saves it. */
    MutableDirectBuffer residual();
}
