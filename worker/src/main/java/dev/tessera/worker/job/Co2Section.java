package dev.tessera.worker.job;

/**
 * {@code co2:} CO2 training (ALGORITHMS.md §6, issue 19): each data-parallel rank runs {@code tau} local steps of
 * its inner optimizer with no gradient all-reduce, then all-reduces (averages) its parameters without blocking
 * while it runs the next round; the average is applied one round late by the outer step ({@code outer_lr},
 * {@code outer_momentum}, the staleness {@code gap_penalty}, optional {@code clip} of the outer momentum to
 * {@code clip_threshold}). Off unless {@code enabled}; the defaults are the reference code's. With
 * {@code keep_local_progress} a round starts from the outer parameters plus this rank's own progress of the round
 * before, whose average is still in flight, instead of from the outer parameters alone (ALGORITHMS.md §6's
 * reading of the reference code's live reference point). With {@code shard_outer_state} each of N data-parallel
 * ranks keeps the outer state of one contiguous 1/N of the parameters only (ZeRO-style, ALGORITHMS.md §6
 * "Memory"): a round's average becomes a reduce-scatter to the owners, whose outer steps are then all-gathered.
 */
public record Co2Section(boolean enabled, int tau, double outerLr, double outerMomentum, double gapPenalty,
                         GapPenaltyMode gapPenaltyMode, boolean clip, double clipThreshold,
                         boolean keepLocalProgress, boolean shardOuterState) {

    public static Co2Section defaults() {
        return new Co2Section(false, 3, 1.0, 0.5, 1.0, GapPenaltyMode.CONSTANT, false, 1.0, false, false);
    }
}
