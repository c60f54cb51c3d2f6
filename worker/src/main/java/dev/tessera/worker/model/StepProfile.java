package dev.tessera.worker.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The accounting behind {@link ModelStepTimer}, apart from the clock: nanoseconds per section of a step, and per
 * kernel within each section. Sections partition the step (they never overlap), so the total is their sum; a
 * kernel's time is part of the section it ran in and is reported beneath it, never added to the total again.
 * A kernel that ran outside every section is a section of its own. Names become ids once, when registered, so
 * recording is an array add. Not thread-safe: {@link ModelStepTimer} serialises access.
 */
final class StepProfile {
    private final List<String> sectionNames = new ArrayList<>();
    private final Map<String, Integer> sectionIds = new HashMap<>();
    private final List<String> kernelNames = new ArrayList<>();
    private final Map<String, Integer> kernelIds = new HashMap<>();
    private int[] kernelAlone = new int[0]; // kernel id -> the section it counts as when it ran outside every section
    private long[] sectionNanos = new long[0];
    private long[][] kernelNanos = new long[0][]; // [section][kernel]

    /** The id of top-level section {@code name}, registered on first use. */
    int section(String name) {
        Integer id = sectionIds.get(name);
        if (id != null) {
            return id;
        }
        int s = sectionNames.size();
        sectionNames.add(name);
        sectionIds.put(name, s);
        sectionNanos = Arrays.copyOf(sectionNanos, s + 1);
        kernelNanos = Arrays.copyOf(kernelNanos, s + 1);
        kernelNanos[s] = new long[kernelNames.size()];
        return s;
    }

    /** The id of kernel {@code name}, registered on first use. */
    int kernel(String name) {
        Integer id = kernelIds.get(name);
        if (id != null) {
            return id;
        }
        int k = kernelNames.size();
        kernelNames.add(name);
        kernelIds.put(name, k);
        for (int s = 0; s < kernelNanos.length; s++) {
            kernelNanos[s] = Arrays.copyOf(kernelNanos[s], k + 1);
        }
        int alone = section(name);
        kernelAlone = Arrays.copyOf(kernelAlone, k + 1);
        kernelAlone[k] = alone;
        return k;
    }

    void addSection(int section, long nanos) {
        sectionNanos[section] += nanos;
    }

    /** {@code section} -1: the kernel ran outside every section. */
    void addKernel(int section, int kernel, long nanos) {
        if (section < 0) {
            sectionNanos[kernelAlone[kernel]] += nanos;
        } else {
            kernelNanos[section][kernel] += nanos;
        }
    }

    /** Forgets the times, keeps the names (the instrumented code holds their ids). */
    void clear() {
        Arrays.fill(sectionNanos, 0);
        for (long[] row : kernelNanos) {
            Arrays.fill(row, 0);
        }
    }

    /**
     * Milliseconds per step and share of the step: each section, largest first, with the kernels that ran in it
     * indented beneath it and {@code other} for the rest of it; then the total of the sections; then each kernel
     * summed over all sections.
     */
    String report(int steps) {
        long total = 0;
        for (long n : sectionNanos) {
            total += n;
        }
        StringBuilder sb = new StringBuilder();
        header(sb, "section (indented: of which, by kernel)");
        for (int s : largestFirst(sectionNanos)) {
            line(sb, sectionNames.get(s), sectionNanos[s], steps, total);
            long inKernels = 0;
            for (int k : largestFirst(kernelNanos[s])) {
                line(sb, "  " + kernelNames.get(k), kernelNanos[s][k], steps, total);
                inKernels += kernelNanos[s][k];
            }
            if (inKernels > 0) {
                line(sb, "  other", sectionNanos[s] - inKernels, steps, total);
            }
        }
        sb.append(String.format(Locale.ROOT, "%-40s %9.2f%n", "total", total / 1e6 / steps));
        long[] byKernel = new long[kernelNames.size()];
        for (int k = 0; k < byKernel.length; k++) {
            byKernel[k] = sectionNanos[kernelAlone[k]];
            for (long[] row : kernelNanos) {
                byKernel[k] += row[k];
            }
        }
        int[] kernels = largestFirst(byKernel);
        if (kernels.length > 0) {
            header(sb, "kernel, over all sections");
            for (int k : kernels) {
                line(sb, kernelNames.get(k), byKernel[k], steps, total);
            }
        }
        return sb.toString();
    }

    private static void header(StringBuilder sb, String first) {
        sb.append(String.format(Locale.ROOT, "%-40s %9s %6s%n", first, "ms/step", "%"));
    }

    private static void line(StringBuilder sb, String name, long nanos, int steps, long total) {
        sb.append(String.format(Locale.ROOT, "%-40s %9.2f %6.1f%n", name, nanos / 1e6 / steps,
                total == 0 ? 0.0 : 100.0 * nanos / total));
    }

    /** Indices of the non-zero entries, largest first (ties: lower index first). */
    private static int[] largestFirst(long[] nanos) {
        Integer[] idx = new Integer[nanos.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, Comparator.comparingLong((Integer i) -> -nanos[i]).thenComparingInt(i -> i));
        return Arrays.stream(idx).filter(i -> nanos[i] > 0).mapToInt(Integer::intValue).toArray();
    }
}
