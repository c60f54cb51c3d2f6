package dev.tessera.comm;

/**
 * Lines the JVM itself prints that say nothing about the program: Tessera's launch flags add
 * {@code --add-modules jdk.incubator.vector}, and Java 17 then always opens stderr with
 * {@code WARNING: Using incubator modules: jdk.incubator.vector, ...}, with no option to silence it. Whatever shows a
 * process's output to a user (the {@code tessera} launcher script, a worker's relayed output) drops these lines so
 * the line that matters comes first.
 */
public final class JvmNoise {

    static final String INCUBATOR_WARNING = "WARNING: Using incubator modules: ";

    private JvmNoise() {
    }

    /** Whether {@code line} (without its line terminator) is the JVM's incubator-module notice. */
    public static boolean isNoise(String line) {
        return line.startsWith(INCUBATOR_WARNING);
    }
}
