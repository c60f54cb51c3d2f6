package dev.tessera.worker.train;

import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.parallel.MemoryProbe;
import java.nio.file.Path;

/**
 * Passes the loop's progress on to {@code next}, letting {@code probe} sample the resident bytes of
 * {@code store}'s flat buffers at the end of each step first (it stops by itself after the first few).
 */
public final class MemorySampling implements TrainingListener {

    private final MemoryProbe probe;
    private final ParameterStore store;
    private final TrainingListener next;

    public MemorySampling(MemoryProbe probe, ParameterStore store, TrainingListener next) {
        this.probe = probe;
        this.store = store;
        this.next = next;
    }

    @Override
    public void onStart(long completedSteps, long totalSteps) {
        probe.started(completedSteps, totalSteps);
        next.onStart(completedSteps, totalSteps);
    }

    /** When the step ran, not when it is reported: a report follows the next step's compute. */
    @Override
    public void onUpdate(long step) {
        probe.stepDone(step, store);
        next.onUpdate(step);
    }

    @Override
    public void onStep(StepMetrics metrics) {
        next.onStep(metrics);
    }

    @Override
    public void onEval(long step, double evalLoss) {
        next.onEval(step, evalLoss);
    }

    @Override
    public void onCheckpoint(long step, Path directory) {
        next.onCheckpoint(step, directory);
    }
}
