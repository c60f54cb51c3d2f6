package dev.tessera.worker;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

/**
 * The module flags and {@code -D} properties this test JVM was started with, for tests that start a JVM of their
 * own. (The coordinator's launchers do the same for workers; worker tests cannot depend on the coordinator.)
 */
public final class JvmFlags {

    private JvmFlags() {
    }

    public static List<String> inherited() {
        List<String> in = ManagementFactory.getRuntimeMXBean().getInputArguments();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < in.size(); i++) {
            String a = in.get(i);
            if (a.startsWith("--add-") || a.startsWith("--enable-native-access")) {
                out.add(a);
                if (!a.contains("=") && i + 1 < in.size()) {
                    out.add(in.get(++i)); // the value of a flag that takes it as a separate argument
                }
            } else if (a.startsWith("-Dorg.bytedeco") || a.startsWith("-Djava.awt.headless")) {
                out.add(a);
            }
        }
        return out;
    }
}
