package dev.tessera.coordinator.run;

import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;

import java.nio.file.Path;
import java.util.List;

/**
 * Hands one listener to the training loop and forwards to many, in order. A listener's exception propagates:
 * a run whose metrics cannot be written should stop, not train on blind.
 */
public final class CompositeListener implements TrainingListener {

    private final List<TrainingListener> listeners;

    public CompositeListener(List<TrainingListener> listeners) {
        this.listeners = List.copyOf(listeners);
    }

    public static CompositeListener of(TrainingListener... listeners) {
        return new CompositeListener(List.of(listeners));
    }

    @Override
    public void onStart(long firstStep, long totalSteps) {
        listeners.forEach(l -> l.onStart(firstStep, totalSteps));
    }

    @Override
    public void onUpdate(long step) {
        listeners.forEach(l -> l.onUpdate(step));
    }

    @Override
    public void onStep(StepMetrics metrics) {
        listeners.forEach(l -> l.onStep(metrics));
    }

    @Override
    public void onEval(long step, double evalLoss) {
        listeners.forEach(l -> l.onEval(step, evalLoss));
    }

    @Override
    public void onCheckpoint(long step, Path directory) {
        listeners.forEach(l -> l.onCheckpoint(step, directory));
    }
}
