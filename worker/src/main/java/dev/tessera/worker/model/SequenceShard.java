package dev.tessera.worker.model;

import java.util.Arrays;

/**
 * Which tokens of every sequence this rank holds, and how its attention reaches the others: the model's whole view
 * of sequence parallelism. {@code positions} are the global positions of the rank's tokens, ascending, the same for
 * every sequence of its batch; RoPE and the causal mask use them (ALGORITHMS.md 8.0), so a rank holding two
 * zig-zag chunks rotates and masks each token as the single process does.
 */
public record SequenceShard(int[] positions, SequenceAttention.Factory attention) {

    /** Attention over whole sequences in this process: {@link AttentionCore}, nothing exchanged. */
    public static final SequenceAttention.Factory LOCAL_ATTENTION = (dt, batch, heads, headDim, seq, scores,
            activations) -> new AttentionCore(dt, Math.multiplyExact(batch, heads), heads, seq, seq, headDim, 0, 0, scores,
            activations);

    public SequenceShard {
        positions = positions.clone();
        for (int i = 1; i < positions.length; i++) {
            if (positions[i] <= positions[i - 1]) {
                throw new IllegalArgumentException("positions must ascend: " + Arrays.toString(positions));
            }
        }
    }

    /** Whole sequences of {@code seq} tokens, attended locally. */
    public static SequenceShard whole(int seq) {
        return new SequenceShard(run(0, seq), LOCAL_ATTENTION);
    }

    /** The {@code count} positions from {@code first}: one contiguous run. */
    public static int[] run(int first, int count) {
        int[] positions = new int[count];
        for (int t = 0; t < count; t++) {
            positions[t] = first + t;
        }
        return positions;
    }

    /** Whether this rank holds whole sequences (no sequence parallelism). */
    public boolean isWhole() {
        return attention == LOCAL_ATTENTION;
    }

    /** Tokens of each sequence this rank holds. */
    public int length() {
        return positions.length;
    }

    @Override
    public int[] positions() {
        return positions.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SequenceShard s && Arrays.equals(positions, s.positions) && attention == s.attention;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(positions) * 31 + System.identityHashCode(attention);
    }

    @Override
    public String toString() {
        return "SequenceShard[" + positions.length + " positions from " + (positions.length == 0 ? 0 : positions[0])
                + (isWhole() ? ", local" : ", sequence-parallel") + "]";
    }
}
