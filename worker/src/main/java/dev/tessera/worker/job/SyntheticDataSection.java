package dev.tessera.worker.job;

import dev.tessera.worker.data.SyntheticCorpus;

/** {@code data.synthetic:} shape of the built-in synthetic grammar (used when {@code data.source: synthetic}). */
public record SyntheticDataSection(int domains, int symbolsPerDomain, int branching) {

    public static SyntheticDataSection defaults() {
        SyntheticCorpus.Spec d = SyntheticCorpus.Spec.DEFAULT;
        return new SyntheticDataSection(d.domains(), d.symbolsPerDomain(), d.branching());
    }
}
