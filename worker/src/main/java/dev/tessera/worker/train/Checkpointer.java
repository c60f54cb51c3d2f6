package dev.tessera.worker.train;

import java.io.IOException;
import java.nio.file.Path;

/** Saves everything needed to continue after {@code step} (model, optimizer state, trainer state). */
@FunctionalInterface
public interface Checkpointer {
    Path save(long step) throws IOException;
}
