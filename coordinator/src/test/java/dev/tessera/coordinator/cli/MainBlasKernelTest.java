package dev.tessera.coordinator.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tessera.comm.ChildJvm;
import dev.tessera.worker.blas.BlasKernel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI's own main chooses the kernel before anything loads OpenBLAS: {@code tessera --version} in a JVM of its
 * own, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE only as each case sets them (never as this JVM has them).
 */
class MainBlasKernelTest {

    @TempDir
    Path tmp;

    @Test
    void aCleanEnvironmentGetsTheCpusBestKernel() throws Exception {
        Set<String> flags = BlasKernel.cpuFlags();
        boolean avx512 = flags.containsAll(Set.of("avx512f", "avx512bw", "avx512vl", "avx512dq"));
        assumeTrue(avx512 || flags.containsAll(Set.of("avx2", "fma")), "this CPU has neither AVX-512 nor AVX2");
        String out = version(Map.of());
        assertTrue(out.contains("OpenBLAS kernel " + (avx512 ? "SkylakeX" : "Haswell") + " (chosen by cpu flags)"),
                out);
    }

    @Test
    void aKernelTheUserSetIsKept() throws Exception {
        List<String> runnable = BlasKernel.runnableOn(BlasKernel.cpuFlags());
        assumeTrue(!runnable.isEmpty(), "no known kernel runs on this CPU");
        String slowest = runnable.get(0); // never what the flags would choose on a CPU with more than one
        String out = version(Map.of(BlasKernel.CORETYPE, slowest));
        assertTrue(out.contains("OpenBLAS kernel " + slowest + " (chosen by OPENBLAS_CORETYPE)"), out);
    }

    /**
     * Bytedeco's OpenBLAS 0.3.19 has a Cooperlake kernel whose dgemm is wrong (relative error about 1 on the
     * check's 130x70x257 product): the CLI must refuse it with exit 2 and a line that says what to set instead.
     */
    @Test
    void aKernelThatComputesWrongResultsIsRefusedWithExitTwo() throws Exception {
        assumeTrue(BlasKernel.cpuFlags().containsAll(Set.of("avx512f", "avx512bw", "avx512vl", "avx512dq",
                "avx512_bf16")), "this CPU cannot run the Cooperlake kernel");
        Run run = run(Map.of(BlasKernel.CORETYPE, "Cooperlake"));
        assertEquals(2, run.exitCode(), run.output());
        List<String> lines = run.output().lines().filter(l -> !l.startsWith("WARNING: Using incubator")).toList();
        assertEquals(1, lines.size(), run.output());
        assertTrue(lines.get(0).startsWith("tessera: the OpenBLAS kernel Cooperlake computes wrong results"), run.output());
        assertTrue(lines.get(0).contains("set OPENBLAS_CORETYPE to another kernel"), run.output());
    }

    private record Run(int exitCode, String output) {
    }

    private String version(Map<String, String> env) throws Exception {
        Run run = run(env);
        assertEquals(0, run.exitCode(), "tessera --version with " + env + ":\n" + run.output());
        return run.output();
    }

    private Run run(Map<String, String> env) throws Exception {
        List<String> command = ChildJvm.command(List.of("-Xmx512m"), Main.class.getName(), List.of("--version"));
        Path log = tmp.resolve("version.log");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().remove(BlasKernel.CORETYPE);
        pb.environment().remove("OPENBLAS_L2_SIZE");
        pb.environment().putAll(env);
        Process process = pb.start();
        boolean exited = process.waitFor(120, TimeUnit.SECONDS);
        if (!exited) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        String out = Files.readString(log);
        assertTrue(exited, "tessera --version with " + env + " still running after 120 s:\n" + out);
        return new Run(process.exitValue(), out);
    }
}
