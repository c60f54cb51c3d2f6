package dev.tessera.comm.compress;

import dev.tessera.comm.ProcessGroup;
import java.util.Map;
import org.agrona.MutableDirectBuffer;

/**
 * How one gradient bucket is summed over a group in compressed form. It runs on the group's background thread
 * ({@link ProcessGroup#runAsync}) with the group's blocking collectives, and keeps its error-feedback residual
 * (and any other state) between rounds.
 */
public interface BucketReduction {

    /** Replaces {@code bucket} (float32) with the sum over the group of the members' decoded buckets. */
    void reduce(ProcessGroup group, MutableDirectBuffer bucket, long round);

    /**
     * What a checkpoint keeps for the next round to encode the same bits, by name: the error-feedback residual of
     * the encoded layers ({@code residual}, one float32 per element; empty without error feedback) and any
     * warm start (PowerSGD's {@code q.<layer>}). Loading writes into these buffers.
     */
    Map<String, MutableDirectBuffer> state();
}
