package dev.tessera.worker.checkpoint;

import dev.tessera.worker.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Which checkpoints of a run stay on disk, and the removal of the rest and of leftovers.
 *
 * <p>A checkpoint is deleted by renaming it to a hidden {@code .step-NNNNNNN.deleting-<random>} first (atomic,
 * fsynced) and only then removing its files, so a crash mid-delete leaves a hidden folder that readers ignore and
 * {@link #sweepLeftovers} removes, never a {@code step-NNNNNNN} with files missing.
 *
 * @param keepLast  how many of the newest complete checkpoints are kept (at least 1)
 * @param keepEvery when above 0, the newest checkpoint at or before each multiple of {@code keepEvery} steps is
 *                  kept too (e.g. 100: the last one of steps 1..100, of 101..200, ...)
 */
public record CheckpointRetention(int keepLast, int keepEvery) {

    /** Hidden folders the checkpoint writer and this class leave while they work: staging, replaced, deleting. */
    private static final Pattern CHECKPOINT_LEFTOVER = Pattern.compile("\\.step-\\d+\\.(tmp|old|deleting)-[0-9a-f]+");
    /** {@link AtomicFiles#writeBytes}'s temporary files ({@code .summary.json.tmp-<random>}). */
    private static final Pattern FILE_LEFTOVER = Pattern.compile("\\..+\\.tmp-[0-9a-f]{16}");

    public CheckpointRetention {
        if (keepLast < 1 || keepEvery < 0) {
            throw new IllegalArgumentException("keepLast " + keepLast + " must be >= 1, keepEvery " + keepEvery
                    + " >= 0");
        }
    }

    /**
     * Deletes the checkpoints of {@code runDir} this policy does not keep, once {@code committedStep}'s checkpoint
     * is complete; that one is always kept (a resumed run may have newer checkpoints of the abandoned future).
     * Only complete checkpoints (with a manifest) are candidates. Returns the deleted folders.
     */
    public List<Path> prune(Path runDir, long committedStep) {
        TreeMap<Long, Path> complete = completeCheckpoints(runDir);
        Set<Long> keep = new HashSet<>();
        keep.add(committedStep);
        complete.descendingKeySet().stream().limit(keepLast).forEach(keep::add);
        if (keepEvery > 0) {
            Map<Long, Long> newestPerPeriod = new TreeMap<>();
            for (long step : complete.keySet()) {
                newestPerPeriod.merge(Math.floorDiv(step + keepEvery - 1, keepEvery), step, Math::max);
            }
            keep.addAll(newestPerPeriod.values());
        }
        List<Path> deleted = new ArrayList<>();
        for (Map.Entry<Long, Path> c : complete.entrySet()) {
            if (!keep.contains(c.getKey())) {
                delete(c.getValue(), c.getKey());
                deleted.add(c.getValue());
            }
        }
        return deleted;
    }

    /**
     * Removes what an interrupted writer or delete left in {@code runDir}: hidden checkpoint staging, replaced and
     * half-deleted folders, and hidden temporary files of atomic writes. Call only when no job writes there.
     */
    public static List<Path> sweepLeftovers(Path runDir) {
        List<Path> removed = new ArrayList<>();
        removed.addAll(removeMatching(CheckpointLayout.checkpointsDir(runDir), CHECKPOINT_LEFTOVER));
        removed.addAll(removeMatching(runDir, FILE_LEFTOVER));
        return removed;
    }

    private static void delete(Path checkpoint, long step) {
        Path doomed = checkpoint.resolveSibling("." + CheckpointLayout.dirName(step) + ".deleting-"
                + AtomicFiles.randomSuffix());
        try {
            AtomicFiles.moveAtomically(checkpoint, doomed);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete old checkpoint " + checkpoint, e);
        }
        AtomicFiles.deleteRecursively(doomed);
    }

    private static TreeMap<Long, Path> completeCheckpoints(Path runDir) {
        TreeMap<Long, Path> byStep = new TreeMap<>();
        Path dir = CheckpointLayout.checkpointsDir(runDir);
        if (!Files.isDirectory(dir)) {
            return byStep;
        }
        try (Stream<Path> list = Files.list(dir)) {
            list.forEach(p -> {
                OptionalLong step = CheckpointLayout.parseStep(p.getFileName().toString());
                if (step.isPresent() && Files.isRegularFile(p.resolve(CheckpointLayout.MANIFEST))) {
                    byStep.put(step.getAsLong(), p);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        return byStep;
    }

    private static List<Path> removeMatching(Path dir, Pattern name) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<Path> removed = new ArrayList<>();
        try (Stream<Path> list = Files.list(dir)) {
            for (Path p : list.filter(p -> name.matcher(p.getFileName().toString()).matches()).toList()) {
                AtomicFiles.deleteRecursively(p);
                removed.add(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        return removed;
    }
}
