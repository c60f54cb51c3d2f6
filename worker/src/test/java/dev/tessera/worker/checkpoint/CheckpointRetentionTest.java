package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointRetentionTest {

    @TempDir
    Path run;

    /** Retention looks only at names and manifests, so a folder with a manifest stands in for a checkpoint. */
    private Path checkpoint(long step) throws IOException {
        Path dir = CheckpointLayout.checkpointDir(run, step);
        Files.createDirectories(dir.resolve(CheckpointLayout.OPTIMIZER_DIR));
        Files.writeString(dir.resolve(CheckpointLayout.MANIFEST), "{}");
        Files.writeString(dir.resolve(CheckpointLayout.OPTIMIZER_DIR).resolve("rank-00000.safetensors"), "x");
        return dir;
    }

    private Set<String> entries(Path dir) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
        }
    }

    private Set<String> stepsLeft() throws IOException {
        return entries(CheckpointLayout.checkpointsDir(run));
    }

    private static Set<String> names(long... steps) {
        return LongStream.of(steps).mapToObj(CheckpointLayout::dirName).collect(Collectors.toCollection(TreeSet::new));
    }

    @Test
    void keepsTheNewestKeepLastCheckpoints() throws IOException {
        for (long step = 10; step <= 50; step += 10) {
            checkpoint(step);
        }
        List<Path> deleted = new CheckpointRetention(2, 0).prune(run, 50);
        assertEquals(names(40, 50), stepsLeft());
        assertEquals(3, deleted.size(), deleted.toString());
    }

    @Test
    void keepEveryAlsoKeepsTheNewestCheckpointAtOrBeforeEachMultiple() throws IOException {
        for (long step = 10; step <= 100; step += 10) {
            checkpoint(step);
        }
        new CheckpointRetention(1, 25).prune(run, 100);
        // Periods 1..25, 26..50, 51..75, 76..100 keep 20, 50, 70 and 100.
        assertEquals(names(20, 50, 70, 100), stepsLeft());
    }

    @Test
    void pruningAsTrainingGoesKeepsExactlyKeepLast() throws IOException {
        CheckpointRetention retention = new CheckpointRetention(3, 0);
        for (long step = 1; step <= 60; step++) {
            checkpoint(step);
            retention.prune(run, step);
            assertEquals(names(LongStream.rangeClosed(Math.max(1, step - 2), step).toArray()), stepsLeft());
        }
    }

    @Test
    void theCheckpointJustCompletedIsKeptEvenWhenNewerOnesExist() throws IOException {
        for (long step : new long[] {10, 20, 30}) {
            checkpoint(step);
        }
        checkpoint(15); // a run resumed from step 10 has just written step 15; 20 and 30 are its abandoned future
        new CheckpointRetention(1, 0).prune(run, 15);
        assertTrue(stepsLeft().contains(CheckpointLayout.dirName(15)), stepsLeft().toString());
    }

    @Test
    void incompleteCheckpointsAndOtherFilesAreNotTouched() throws IOException {
        checkpoint(10);
        checkpoint(20);
        Files.createDirectories(CheckpointLayout.checkpointDir(run, 5)); // no manifest: not a checkpoint
        new CheckpointRetention(1, 0).prune(run, 20);
        assertEquals(names(5, 20), stepsLeft());
    }

    @Test
    void sweepRemovesStagingReplacedAndHalfDeletedFoldersAndTemporaryFilesOnly() throws IOException {
        Path kept = checkpoint(10);
        Path checkpoints = CheckpointLayout.checkpointsDir(run);
        Path staging = CheckpointWriter.stage(run, 20).stagingDir();
        Files.writeString(staging.resolve("config.json"), "{}");
        Files.createDirectories(checkpoints.resolve(".step-0000010.old-0123456789abcdef"));
        Path halfDeleted = Files.createDirectories(checkpoints.resolve(".step-0000005.deleting-00ff00ff00ff00ff"));
        Files.writeString(halfDeleted.resolve(CheckpointLayout.MANIFEST), "{}");
        Files.writeString(run.resolve(".summary.json.tmp-0123456789abcdef"), "{");
        Files.writeString(run.resolve("metrics.jsonl"), "");
        Files.writeString(run.resolve(".notes"), "mine");
        Files.createDirectories(checkpoints.resolve(".mine"));

        List<Path> removed = CheckpointRetention.sweepLeftovers(run);

        assertEquals(4, removed.size(), removed.toString());
        assertEquals(Set.of(".mine", kept.getFileName().toString()), entries(checkpoints));
        assertEquals(Set.of(".notes", "checkpoints", "metrics.jsonl"), entries(run));
    }

    @Test
    void aHalfDeletedCheckpointIsHiddenFromReaders() throws IOException {
        checkpoint(10);
        Files.move(CheckpointLayout.checkpointDir(run, 10),
                CheckpointLayout.checkpointsDir(run).resolve(".step-0000010.deleting-0123456789abcdef"));
        assertEquals(java.util.Optional.empty(), Checkpoint.latest(run, line -> {
            throw new AssertionError("hidden folders are not checkpoints, so nothing to report: " + line);
        }));
    }

    @Test
    void refusesToKeepNothing() {
        assertThrows(IllegalArgumentException.class, () -> new CheckpointRetention(0, 0));
        assertThrows(IllegalArgumentException.class, () -> new CheckpointRetention(1, -1));
    }
}
