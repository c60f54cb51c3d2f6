package dev.tessera.coordinator;

import dev.tessera.coordinator.run.RunSummary;

import java.nio.file.Path;
import java.util.Optional;

/**
 * What {@link Trainer#fit} returns.
 *
 * @param runDirectory    where the run's config.yaml, metrics.jsonl, summary.json, loss.png and checkpoints are
 * @param summary         the run's figures (losses, throughput, memory), as in summary.json; empty when a
 *                        resumed run had already reached {@code train.steps} and nothing was trained
 * @param finalCheckpoint the newest complete checkpoint of the run, if it wrote any
 */
public record TrainResult(Path runDirectory, Optional<RunSummary> summary, Optional<Path> finalCheckpoint) {
}
