package dev.tessera.worker.data;

import java.util.List;
import java.util.OptionalDouble;

/**
 * A deterministic stream of training sequences. Sample {@code i} of step {@code s} is a pure function of
 * (source seed, split, s, i), so the global batch is the same whatever the mesh: data-parallel rank
 * {@code d} of {@code dp} asks for samples {@code [d*B/dp, (d+1)*B/dp)}.
 */
public interface TokenSource {

    enum Split { TRAIN, VALIDATION }

    int vocabSize();

    /**
     * Fills {@code count} sequences, samples {@code firstSample .. firstSample+count-1} of {@code step}:
     * {@code inputs[j*seq + t]} and {@code targets[j*seq + t]} (the next token after the input).
     */
    void fill(Split split, long step, int firstSample, int count, int seq, int[] inputs, int[] targets);

    /** Exact per-token entropy (nats) of the source's targets, when the source knows it. */
    OptionalDouble entropyFloor();

    /** One line for logs: what the source is and its size. */
    String describe();

    /** Lines for stderr about data that will train but is probably not what the user meant (e.g. binary "text"). */
    default List<String> warnings() {
        return List.of();
    }
}
