package dev.tessera.coordinator.config;

/** Where training tokens come from: the built-in synthetic grammar, or a text file read as bytes. */
public enum DataSourceKind {
    SYNTHETIC,
    TEXT
}
