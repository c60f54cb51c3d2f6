package dev.tessera.worker.job;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.data.SyntheticCorpus;
import dev.tessera.worker.data.TextDataset;
import dev.tessera.worker.data.TokenSource;
import java.nio.file.Path;

/** {@code data:} the token source, its validation split and its seed. {@code path} is null unless text. */
public record DataSection(DataSourceKind source, String path, double valFraction, long seed,
                          SyntheticDataSection synthetic) {

    public static DataSection defaults() {
        return new DataSection(DataSourceKind.SYNTHETIC, null, 0.05, SyntheticCorpus.Spec.DEFAULT.seed(),
                SyntheticDataSection.defaults());
    }

    /**
     * Opens the source for sequences of {@code seq} tokens, checking that both splits can supply them. Every
     * process that opens the same section reads the same stream.
     */
    public TokenSource open(int seq) {
        if (source == DataSourceKind.TEXT) {
            if (path == null) {
                throw new UserInputException("data.path is required when data.source is text");
            }
            TextDataset dataset = new TextDataset(Path.of(path), valFraction, seed);
            dataset.checkFits(TokenSource.Split.TRAIN, seq);
            dataset.checkFits(TokenSource.Split.VALIDATION, seq);
            return dataset;
        }
        return new SyntheticCorpus(new SyntheticCorpus.Spec(synthetic.domains(), synthetic.symbolsPerDomain(),
                synthetic.branching(), seed), seq);
    }
}
