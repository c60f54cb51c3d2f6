package dev.tessera.worker.job;

/** {@code eval:} validation every {@code every} steps (0 = never) over {@code batches} batches. */
public record EvalSection(int every, int batches) {

    public static EvalSection defaults() {
        return new EvalSection(250, 8);
    }
}
