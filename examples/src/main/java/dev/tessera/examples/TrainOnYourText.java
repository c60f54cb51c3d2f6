package dev.tessera.examples;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.cli.ErrorReporter;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Trains a dense byte-level model on your own UTF-8 text files ({@code examples/jobs/own-text.yaml}): a file, or a
 * folder whose files are all read.
 * <pre>
 *   ./tessera example TrainOnYourText /path/to/texts [run-directory] [key=value ...]
 * </pre>
 */
public final class TrainOnYourText {

    private TrainOnYourText() {
    }

    public static void main(String[] args) {
        ErrorReporter.exitWith(() -> ExampleJob.report(train(args)));
    }

    /** Trains the example's job with the program's arguments; {@link #main} reports the result. */
    static TrainResult train(String[] args) throws Exception {
        if (args.length < 1) {
            throw new UserInputException("TrainOnYourText needs the text: a UTF-8 file or a folder of them, e.g."
                    + " ./tessera example TrainOnYourText ~/books");
        }
        Path text = Path.of(args[0]);
        if (!Files.exists(text)) {
            throw new UserInputException(text + ": no such file or folder; give a UTF-8 text file or a folder of them");
        }
        Path out = Path.of(args.length > 1 ? args[1] : "runs/own-text");
        List<String> sets = new ArrayList<>();
        sets.add("data.path=" + text.toAbsolutePath());
        sets.addAll(ExampleJob.sets(args, 2));
        return ExampleJob.train("own-text.yaml", out, sets);
    }
}
