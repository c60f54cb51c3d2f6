package dev.tessera.comm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The CPUs of this host: those online, and those this process may run on (its affinity). */
public final class HostCpus {

    private HostCpus() {
    }

    /** CPUs online on the host, whatever this process is bound to (at least 1). */
    public static int online() {
        try {
            return Math.max(1, parse(Files.readString(Path.of("/sys/devices/system/cpu/online")).trim()).size());
        } catch (IOException | RuntimeException e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }

    /** {@code Cpus_allowed_list} of this process, expanded; empty when unreadable. */
    public static List<Integer> allowed() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Cpus_allowed_list:")) {
                    return parse(line.substring(line.indexOf(':') + 1).trim());
                }
            }
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
        return List.of();
    }

    /** A kernel CPU list such as {@code 0-3,8}, expanded. */
    static List<Integer> parse(String list) {
        List<Integer> cpus = new ArrayList<>();
        for (String part : list.split(",")) {
            String[] range = part.split("-");
            int from = Integer.parseInt(range[0].trim());
            int to = range.length > 1 ? Integer.parseInt(range[1].trim()) : from;
            for (int c = from; c <= to; c++) {
                cpus.add(c);
            }
        }
        return cpus;
    }
}
