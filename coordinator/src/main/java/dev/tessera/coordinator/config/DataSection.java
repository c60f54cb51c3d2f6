package dev.tessera.coordinator.config;

import dev.tessera.worker.data.DataSpec;
import dev.tessera.worker.data.SyntheticCorpus;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** {@code data:} the token source, its validation split and its seed. {@code path} is null unless text. */
public record DataSection(DataSourceKind source, String path, double valFraction, long seed,
                          SyntheticDataSection synthetic) {

    public static DataSection defaults() {
        return new DataSection(DataSourceKind.SYNTHETIC, null, 0.05, SyntheticCorpus.Spec.DEFAULT.seed(),
                SyntheticDataSection.defaults());
    }

    /** What a worker opens. */
    public DataSpec toSpec() {
        return new DataSpec(source == DataSourceKind.TEXT, path, valFraction, seed, synthetic.domains(),
                synthetic.symbolsPerDomain(), synthetic.branching());
    }

    public Optional<Path> textPath() {
        return Optional.ofNullable(path).map(Path::of);
    }

    static DataSection read(ConfigValues v) {
        return new DataSection(
                v.getEnum("data.source", DataSourceKind.class),
                v.getOptionalString("data.path"),
                v.getDouble("data.val_fraction"),
                v.getLong("data.seed"),
                SyntheticDataSection.read(v));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("source", ConfigValues.yamlName(source));
        m.put("path", path);
        m.put("val_fraction", valFraction);
        m.put("seed", seed);
        m.put("synthetic", synthetic.toMap());
        return m;
    }
}
