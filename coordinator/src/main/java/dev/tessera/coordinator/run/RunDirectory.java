package dev.tessera.coordinator.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.job.JobConfig;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The directory one training run writes: config.yaml (the resolved job), metrics.jsonl, summary.json, loss.png
 * and checkpoints/step-NNNNNNN/. A fresh run refuses a non-empty directory so it never mixes with another run's
 * files; a resumed run appends to its own.
 */
public final class RunDirectory {

    public static final String CONFIG = "config.yaml";
    public static final String METRICS = "metrics.jsonl";
    public static final String SUMMARY = "summary.json";
    public static final String LOSS_PLOT = "loss.png";
    public static final String CHECKPOINTS = "checkpoints";

    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss");

    private final Path root;
    private final Path resumedFrom;

    private RunDirectory(Path root, Path resumedFrom) {
        this.root = root;
        this.resumedFrom = resumedFrom;
    }

    /** A fresh run in {@code out}, or in {@code runs/<yyyyMMdd-HHmmss>} under the working directory when null. */
    public static RunDirectory create(Path outOrNull) {
        return create(outOrNull, Path.of("runs"), LocalDateTime.now());
    }

    /** As {@link #create(Path)}, with the parent of timestamped directories and the clock given (for tests). */
    public static RunDirectory create(Path outOrNull, Path runsParent, LocalDateTime now) {
        try {
            if (outOrNull == null) {
                return new RunDirectory(createTimestamped(runsParent, now), null);
            }
            if (Files.exists(outOrNull) && !isEmptyDirectory(outOrNull)) {
                String what = Files.isDirectory(outOrNull) ? "exists and is not empty"
                        : "exists and is not a directory";
                throw new UserInputException("output directory " + outOrNull + " " + what + "; choose another --out, "
                        + "delete it, or pass --resume " + outOrNull + " to continue that run");
            }
            return new RunDirectory(Files.createDirectories(outOrNull), null);
        } catch (IOException e) {
            throw cannotCreate(outOrNull == null ? runsParent : outOrNull, e);
        }
    }

    /**
     * Continues the run found at {@code resumeArg} (its directory, or one of its checkpoint directories). Output
     * goes to that run's directory, or to {@code outOrNull} when given (which may already hold files).
     */
    public static RunDirectory resume(Path resumeArg, Path outOrNull) {
        Path source = findRunRoot(resumeArg);
        Path target = outOrNull == null ? source : outOrNull;
        if (Files.exists(target) && !Files.isDirectory(target)) {
            throw new UserInputException("output directory " + target + " exists and is not a directory");
        }
        try {
            return new RunDirectory(Files.createDirectories(target), source);
        } catch (IOException e) {
            throw cannotCreate(target, e);
        }
    }

    /** The run directory holding {@code path}: itself or, for a checkpoint, the run above checkpoints/. */
    public static Path findRunRoot(Path path) {
        if (!Files.isDirectory(path)) {
            throw new UserInputException("--resume " + path + ": no such directory; pass the directory of an earlier "
                    + "run (its --out) or one of its checkpoints");
        }
        Path dir = path.toAbsolutePath().normalize();
        if (Files.isRegularFile(dir.resolve(CONFIG))) {
            return dir;
        }
        Path parent = dir.getParent();
        Path grandparent = parent == null ? null : parent.getParent();
        boolean isCheckpoint = parent != null && parent.getFileName().toString().equals(CHECKPOINTS);
        if (isCheckpoint && grandparent != null && Files.isRegularFile(grandparent.resolve(CONFIG))) {
            return grandparent;
        }
        throw new UserInputException("--resume " + path + ": not a Tessera run (no " + CONFIG + " in it or in the "
                + "run above it); pass the --out directory of an earlier run");
    }

    public Path root() {
        return root;
    }

    public boolean isResume() {
        return resumedFrom != null;
    }

    /** The run being continued, which may differ from {@link #root()} when resuming into a new --out. */
    public Optional<Path> resumedFrom() {
        return Optional.ofNullable(resumedFrom);
    }

    public Path configFile() {
        return root.resolve(CONFIG);
    }

    public Path metricsFile() {
        return root.resolve(METRICS);
    }

    public Path summaryFile() {
        return root.resolve(SUMMARY);
    }

    public Path lossPlotFile() {
        return root.resolve(LOSS_PLOT);
    }

    public Path checkpointsDir() {
        return root.resolve(CHECKPOINTS);
    }

    /** {@code checkpoints/step-NNNNNNN}: zero-padded so names sort in step order. */
    public Path checkpointDir(long step) {
        return checkpointsDir().resolve(String.format("step-%07d", step));
    }

    /** Records the resolved job next to its outputs; a resume reads it back as its base config. */
    public void writeConfig(JobConfig config) {
        AtomicFiles.writeString(configFile(), JobConfigLoader.toYaml(config));
    }

    /** The config stored by {@link #writeConfig} in the run being resumed. */
    public Optional<Path> storedConfig() {
        return resumedFrom().map(p -> p.resolve(CONFIG)).filter(Files::isRegularFile);
    }

    private static Path createTimestamped(Path parent, LocalDateTime now) throws IOException {
        Files.createDirectories(parent);
        String stamp = STAMP.format(now);
        // Two runs started in the same second get -1, -2, ...; createDirectory is atomic, so racing runs differ.
        for (int attempt = 0; ; attempt++) {
            Path candidate = parent.resolve(attempt == 0 ? stamp : stamp + "-" + attempt);
            try {
                return Files.createDirectory(candidate);
            } catch (FileAlreadyExistsException e) {
                // try the next suffix
            }
        }
    }

    private static boolean isEmptyDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return false;
        }
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    private static UserInputException cannotCreate(Path dir, IOException e) {
        return new UserInputException("cannot create output directory " + dir + " (" + e.getClass().getSimpleName()
                + ": " + e.getMessage() + "); check the path and its permissions", e);
    }
}
