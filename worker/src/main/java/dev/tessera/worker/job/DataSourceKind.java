package dev.tessera.worker.job;

/** Where training tokens come from: the built-in synthetic grammar, or a text file read as bytes. */
public enum DataSourceKind {
    SYNTHETIC,
    TEXT
}
