package dev.tessera.coordinator.run;

import dev.tessera.worker.checkpoint.CheckpointRetention;
import dev.tessera.worker.train.TrainingListener;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Everything a run writes while and after it trains, behind one listener: metrics.jsonl, the loss history for
 * loss.png, the progress display, and checkpoint retention. {@link #finish} writes summary.json and loss.png.
 */
public final class RunRecorder implements AutoCloseable {

    private final RunDirectory directory;
    private final MetricsWriter metrics;
    private final LossHistory history;
    private final ProgressBar progress;
    private final TrainingListener listener;

    private RunRecorder(RunDirectory directory, MetricsWriter metrics, LossHistory history, ProgressBar progress,
                        CheckpointRetention retention, TrainingListener caller) {
        this.directory = directory;
        this.metrics = metrics;
        this.history = history;
        this.progress = progress;
        this.listener = CompositeListener.of(metrics, history, progress,
                new CheckpointPruner(directory.root(), retention), caller);
    }

    /**
     * Starts recording a run (or one attempt of it) that continues after step {@code fromStep} (0: from the start):
     * removes what an interrupted writer left in the run directory, keeps the metrics up to that step (so the plot
     * shows the whole run) and drops later ones, which will be trained again, so every step has one row even after
     * a restart. Call only when nothing else writes to the run directory. Checkpoints that {@code retention} does
     * not keep are deleted as newer ones complete. {@code caller} hears every event after the recorders (a
     * checkpoint it is told of is complete and kept).
     */
    public static RunRecorder open(RunDirectory directory, ProgressBar progress, long fromStep,
                                   CheckpointRetention retention, TrainingListener caller) {
        CheckpointRetention.sweepLeftovers(directory.root());
        copySourceMetricsIfNew(directory);
        MetricsWriter metrics = MetricsWriter.resumeAfter(directory.metricsFile(), fromStep);
        return new RunRecorder(directory, metrics, LossHistory.readMetrics(directory.metricsFile()), progress,
                retention, caller);
    }

    /** Resuming into a new --out starts its metrics.jsonl from the source run's, so its plot is complete. */
    private static void copySourceMetricsIfNew(RunDirectory directory) {
        Path target = directory.metricsFile();
        directory.resumedFrom().map(run -> run.resolve(RunDirectory.METRICS))
                .filter(source -> Files.isRegularFile(source) && !Files.exists(target))
                .ifPresent(source -> {
                    try {
                        Files.copy(source, target);
                    } catch (IOException e) {
                        throw new UncheckedIOException("cannot copy " + source + " to " + target, e);
                    }
                });
    }

    /** The one listener to give the training loop. */
    public TrainingListener listener() {
        return listener;
    }

    public LossHistory lossHistory() {
        return history;
    }

    /** Writes summary.json and loss.png; call once training has ended. */
    public void finish(RunSummary summary, String plotTitle) {
        progress.finish();
        SummaryWriter.write(directory.summaryFile(), summary);
        LossPlot.write(directory.lossPlotFile(), history, plotTitle);
    }

    @Override
    public void close() {
        progress.finish();
        metrics.close();
    }
}
