package dev.tessera.worker.parallel;

import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.model.ParameterStore;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The most physical memory the flat parameter and gradient buffers occupied while a replica trained its first
 * steps: what summary.json's {@code memory} and {@code tessera bench memory} report. ZeRO samples at the points
 * where its buffers are fullest (each unit gathered, each gradient bucket reduced, before the stage-1
 * reduce-scatter), and the run samples the whole buffers at the end of each step ({@link #stepDone}), which is all
 * there is to see without ZeRO. Sampling asks the kernel which pages are resident ({@code mincore}), so it stops
 * after {@link #STEPS} steps and costs nothing afterwards.
 *
 * <p>Which steps count: below ZeRO-3 the first step starts from buffers that were written whole (initialisation or
 * a checkpoint load), so when more steps follow it is left out, and the peak is over the next {@link #STEPS} steps;
 * a ZeRO-3 rank writes only its shard from the start, so its first step is no fuller. A job of one step reports
 * that step. Evaluation and checkpoint writes after a counted step count too (a ZeRO-3 checkpoint gathers one unit
 * at a time); the last step's come after sampling has stopped.
 */
public final class MemoryProbe {

    /** Steps sampled after the first. */
    public static final int STEPS = 3;

    /** Samples nothing. */
    public static final MemoryProbe OFF = new MemoryProbe(false);

    private boolean enabled;
    private long firstStep = 1;
    private long lastStep = Long.MAX_VALUE;
    private long peakParamBytes;
    private long peakGradBytes;

    private MemoryProbe(boolean enabled) {
        this.enabled = enabled;
    }

    /** A probe that samples until told otherwise by {@link #started} and {@link #stepDone}. */
    public static MemoryProbe on() {
        return new MemoryProbe(true);
    }

    void sample(ZeroSharding zero) {
        if (!enabled) {
            return;
        }
        long[] bytes = zero.residentBytes();
        record(bytes[0], bytes[1]);
    }

    /** Samples the resident bytes of {@code store}'s whole flat parameter and gradient buffers. */
    public void sample(ParameterStore store) {
        if (!enabled) {
            return;
        }
        record(residentBytes(store.params()), residentBytes(store.grads()));
    }

    /** The training loop runs steps {@code completedSteps + 1 .. totalSteps}. */
    public void started(long completedSteps, long totalSteps) {
        if (!enabled) {
            return;
        }
        firstStep = completedSteps + 1;
        lastStep = totalSteps;
    }

    /**
     * After {@code step}'s update, before its evaluation and checkpoint: samples {@code store}, forgets the first
     * step's peak when more steps follow, and stops after the last counted step.
     */
    public void stepDone(long step, ParameterStore store) {
        if (!enabled) {
            return;
        }
        sample(store);
        if (step == firstStep && step < lastStep) {
            peakParamBytes = 0;
            peakGradBytes = 0;
        } else if (step >= firstStep + STEPS || step >= lastStep) {
            enabled = false;
        }
    }

    private void record(long paramBytes, long gradBytes) {
        peakParamBytes = Math.max(peakParamBytes, paramBytes);
        peakGradBytes = Math.max(peakGradBytes, gradBytes);
    }

    private static long residentBytes(INDArray flat) {
        return PageMemory.residentBytes(NativeMemory.address(flat), NativeMemory.byteSize(flat));
    }

    public long peakParamBytes() {
        return peakParamBytes;
    }

    public long peakGradBytes() {
        return peakGradBytes;
    }
}
