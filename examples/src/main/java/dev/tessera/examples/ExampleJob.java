package dev.tessera.examples;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.Trainer;
import dev.tessera.coordinator.run.RunSummary;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The examples' jobs are YAML files in {@code examples/jobs/}, the same files {@code ./tessera train --config} takes;
 * each example program trains one of them through the Java API, with the program's own changes on top.
 */
public final class ExampleJob {

    private ExampleJob() {
    }

    /**
     * {@code examples/jobs/<name>} of this checkout: under {@code tessera.home} (set by {@code ./tessera example}),
     * else found from the working directory upwards (a test runs in {@code examples/}).
     */
    public static Path file(String name) {
        String home = System.getProperty("tessera.home");
        if (home != null && Files.isRegularFile(Path.of(home, "examples", "jobs", name))) {
            return Path.of(home, "examples", "jobs", name);
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            for (Path candidate : List.of(dir.resolve("jobs").resolve(name), dir.resolve("examples/jobs").resolve(name))) {
                if (Files.isRegularFile(candidate)) {
                    return candidate;
                }
            }
        }
        throw new UserInputException("examples/jobs/" + name + " not found: run the example from the Tessera checkout"
                + " (./tessera example ...) or set -Dtessera.home to it");
    }

    /** Trains {@code examples/jobs/<name>} with {@code sets} ("key=value") on top, into {@code out}. */
    static TrainResult train(String name, Path out, List<String> sets) throws Exception {
        Trainer.Builder builder = Trainer.builder().config(file(name)).out(out);
        sets.forEach(builder::set);
        return builder.build().fit();
    }

    /** The line each example ends with. */
    public static void report(TrainResult result) {
        RunSummary s = result.summary().orElseThrow();
        String eval = s.evalLoss().isPresent() ? String.format(Locale.ROOT, "%.4f", s.evalLoss().getAsDouble())
                : "none";
        System.out.printf(Locale.ROOT, "trained %d steps: final loss %.4f, eval loss %s, %.0f tokens/s; run in %s%n",
                s.steps(), s.finalLoss(), eval, s.tokensPerSecond(), result.runDirectory());
    }

    /** Arguments after the example's own: {@code key=value} job changes, as {@code --set} takes them. */
    public static List<String> sets(String[] args, int from) {
        return List.of(args).subList(Math.min(from, args.length), args.length);
    }
}
