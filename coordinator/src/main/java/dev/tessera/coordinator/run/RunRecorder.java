package dev.tessera.coordinator.run;

import dev.tessera.worker.train.TrainingListener;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Everything a run writes while and after it trains, behind one listener: metrics.jsonl, the loss history for
 * loss.png, and the progress display. {@link #finish} writes summary.json and loss.png.
 */
public final class RunRecorder implements AutoCloseable {

    private final RunDirectory directory;
    private final MetricsWriter metrics;
    private final LossHistory history;
    private final ProgressBar progress;
    private final TrainingListener listener;

    private RunRecorder(RunDirectory directory, MetricsWriter metrics, LossHistory history, ProgressBar progress) {
        this.directory = directory;
        this.metrics = metrics;
        this.history = history;
        this.progress = progress;
        this.listener = CompositeListener.of(metrics, history, progress);
    }

    /** For a fresh run. */
    public static RunRecorder open(RunDirectory directory, ProgressBar progress) {
        return new RunRecorder(directory, MetricsWriter.append(directory.metricsFile()), new LossHistory(),
                progress);
    }

    /**
     * For a run resumed from the checkpoint of {@code checkpointStep}: keeps the metrics up to that step (so
     * the plot shows the whole run) and drops later ones, which will be trained again.
     */
    public static RunRecorder resume(RunDirectory directory, ProgressBar progress, long checkpointStep) {
        copySourceMetricsIfNew(directory);
        MetricsWriter metrics = MetricsWriter.resumeAfter(directory.metricsFile(), checkpointStep);
        return new RunRecorder(directory, metrics, LossHistory.readMetrics(directory.metricsFile()), progress);
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
