package dev.tessera.worker.job;

/**
 * {@code co2.gap_penalty_mode}: how CO2's staleness gap penalty divides the stale pseudo-gradient
 * (ALGORITHMS.md §6). {@link #CONSTANT}: the reference code's scalar {@code co2.gap_penalty} for every tensor;
 * {@link #GAP_SCALED}: {@code gap_penalty * (1 + ||gap|| / ||Delta||)} per tensor, our choice (the paper's
 * layer-wise formula was not retrieved).
 */
public enum GapPenaltyMode {
    CONSTANT, GAP_SCALED
}
