package dev.tessera.coordinator.config;

import dev.tessera.worker.data.SyntheticCorpus;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code data.synthetic:} shape of the built-in synthetic grammar (used when {@code data.source: synthetic}). */
public record SyntheticDataSection(int domains, int symbolsPerDomain, int branching) {

    public static SyntheticDataSection defaults() {
        SyntheticCorpus.Spec d = SyntheticCorpus.Spec.DEFAULT;
        return new SyntheticDataSection(d.domains(), d.symbolsPerDomain(), d.branching());
    }

    static SyntheticDataSection read(ConfigValues v) {
        return new SyntheticDataSection(
                v.getInt("data.synthetic.domains"),
                v.getInt("data.synthetic.symbols_per_domain"),
                v.getInt("data.synthetic.branching"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("domains", domains);
        m.put("symbols_per_domain", symbolsPerDomain);
        m.put("branching", branching);
        return m;
    }
}
