package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tessera.worker.blas.BlasKernel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Gemm under every OpenBLAS kernel this CPU can run, each in a child JVM started with OPENBLAS_CORETYPE set
 * (the library reads it only when it loads), and the kernel a clean environment gets. This JVM's own
 * environment (our machines export OPENBLAS_CORETYPE) never decides: each child's is set explicitly.
 */
class GemmUnderEveryKernelTest {

    private static final long CHILD_SECONDS = 180;

    private record Child(String kernel, String chosenBy, String everyCopysKernel, boolean nd4jCopyChecked) {
    }

    @Test
    void gemmAndNd4jMatchTheReferenceUnderEveryKernelThisCpuRunsAndTheUsersKernelIsKept() throws Exception {
        List<String> kernels = BlasKernel.runnableOn(BlasKernel.cpuFlags());
        assertFalse(kernels.isEmpty(), "no OpenBLAS kernel known for this CPU's flags " + BlasKernel.cpuFlags());
        for (String kernel : kernels) {
            Child child = run(Map.of(BlasKernel.CORETYPE, kernel));
            assertTrue(kernel.equalsIgnoreCase(child.kernel()), "asked for " + kernel + ", OpenBLAS runs " + child);
            assertEquals(BlasKernel.BY_USER, child.chosenBy(), kernel);
            assertTrue(kernel.equalsIgnoreCase(child.everyCopysKernel()), kernel + ": " + child);
            assertTrue(child.nd4jCopyChecked(), kernel + ": ND4J's libopenblas.so.0 was not mapped: " + child);
        }
    }

    @Test
    void aCleanEnvironmentPicksAnAvx512OrAvx2KernelOnACpuThatHasIt() throws Exception {
        Set<String> flags = BlasKernel.cpuFlags();
        boolean avx512 = flags.containsAll(Set.of("avx512f", "avx512bw", "avx512vl", "avx512dq"));
        boolean avx2 = flags.containsAll(Set.of("avx2", "fma"));
        assumeTrue(avx2 || avx512, "this CPU has neither AVX-512 nor AVX2");
        Child child = run(Map.of());
        assertEquals(BlasKernel.BY_CPU_FLAGS, child.chosenBy(), child.toString());
        assertEquals(avx512 ? "skylakex" : "haswell", child.kernel().toLowerCase(), child.toString());
        assertEquals(child.kernel(), child.everyCopysKernel(), "ND4J's copy and Gemm's: " + child);
        assertTrue(child.nd4jCopyChecked(), "ND4J's libopenblas.so.0 was not mapped: " + child);
    }

    /** Runs {@link GemmKernelMain} with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE only as {@code env} sets them. */
    private static Child run(Map<String, String> env) throws IOException, InterruptedException {
        Path log = Files.createTempFile("gemm-kernel-", ".log");
        try {
            ProcessBuilder pb = new ProcessBuilder(GemmKernelMain.command()).redirectErrorStream(true)
                    .redirectOutput(log.toFile());
            pb.environment().remove(BlasKernel.CORETYPE);
            pb.environment().remove("OPENBLAS_L2_SIZE");
            pb.environment().putAll(env);
            Process process = pb.start();
            boolean exited = process.waitFor(CHILD_SECONDS, TimeUnit.SECONDS);
            if (!exited) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            String output = Files.readString(log);
            assertTrue(exited, "child with " + env + " still running after " + CHILD_SECONDS + " s:\n" + output);
            assertEquals(0, process.exitValue(), "child with " + env + " failed:\n" + output);
            return parse(env, output);
        } finally {
            Files.deleteIfExists(log);
        }
    }

    private static Child parse(Map<String, String> env, String output) {
        String result = output.lines().filter(l -> l.startsWith(GemmKernelMain.RESULT + "\t")).findFirst()
                .orElse(null);
        assertNotNull(result, "child with " + env + " printed no result:\n" + output);
        String[] f = result.split("\t");
        return new Child(f[1], f[2], f[3], Boolean.parseBoolean(f[4]));
    }
}
