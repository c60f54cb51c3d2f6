package dev.tessera.worker.data;

import dev.tessera.comm.UserInputException;
import java.nio.file.Path;

/**
 * Which token source a job trains on, in a form a worker process can receive: a text file or folder
 * ({@code path}), or the synthetic corpus with its shape. {@link #open} gives every process the same stream.
 */
public record DataSpec(boolean text, String path, double valFraction, long seed, int domains,
                       int symbolsPerDomain, int branching) {

    /** Opens the source for sequences of {@code seq} tokens, checking that both splits can supply them. */
    public TokenSource open(int seq) {
        if (text) {
            if (path == null) {
                throw new UserInputException("data.path is required when data.source is text");
            }
            TextDataset dataset = new TextDataset(Path.of(path), valFraction, seed);
            dataset.checkFits(TokenSource.Split.TRAIN, seq);
            dataset.checkFits(TokenSource.Split.VALIDATION, seq);
            return dataset;
        }
        return new SyntheticCorpus(new SyntheticCorpus.Spec(domains, symbolsPerDomain, branching, seed), seq);
    }
}
