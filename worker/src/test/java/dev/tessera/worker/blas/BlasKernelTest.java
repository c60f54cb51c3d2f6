package dev.tessera.worker.blas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The kernel ladder, the cpuinfo parsing and the startup check's verdicts on right and wrong gemms. */
class BlasKernelTest {

    private static final Set<String> EPYC_AVX512 = Set.of("pni", "avx", "avx2", "fma", "avx512f", "avx512bw",
            "avx512vl", "avx512dq", "avx512_bf16");

    @Test
    void theFastestKernelWhoseFlagsTheCpuHasIsChosen() {
        assertEquals("SkylakeX", BlasKernel.bestFor(EPYC_AVX512));
        assertEquals("Haswell", BlasKernel.bestFor(Set.of("pni", "avx", "avx2", "fma", "avx512f")));
        assertEquals("Sandybridge", BlasKernel.bestFor(Set.of("pni", "avx", "avx2")), "AVX2 without FMA");
        assertNull(BlasKernel.bestFor(Set.of("pni", "ssse3")), "no AVX: OpenBLAS's own detection decides");
        assertEquals(List.of("Prescott", "Sandybridge", "Haswell", "SkylakeX"), BlasKernel.runnableOn(EPYC_AVX512));
    }

    @Test
    void flagsAreReadFromTheFlagsLineOfCpuinfo() {
        String cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu pni avx2 fma avx512f\n"
                + "bugs\t\t: sysret_ss_attrs\n\nprocessor\t: 1\nflags\t\t: fpu\n";
        assertEquals(Set.of("fpu", "pni", "avx2", "fma", "avx512f"), BlasKernel.flagsOf(cpuinfo));
        assertEquals(Set.of(), BlasKernel.flagsOf("processor\t: 0\n"));
    }

    @Test
    void theCheckPassesARightGemmAndNamesTheFirstWrongProduct() {
        assertNull(BlasKernel.firstWrongResult(BlasKernelTest::sgemm, BlasKernelTest::dgemm));
        BlasKernel.Sgemm ignoresTransB = (ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc) ->
                sgemm(ta, false, m, n, k, a, lda, b, tb ? n : ldb, beta, c, ldc);
        String wrong = BlasKernel.firstWrongResult(ignoresTransB, BlasKernelTest::dgemm);
        assertNotNull(wrong);
        assertTrue(wrong.startsWith("sgemm NoTrans x Trans, 33x17x29: relative error"), wrong);
        BlasKernel.Dgemm slightlyOff = (ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc) -> {
            dgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
            c[c.length - 1] += 1e-6;
        };
        wrong = BlasKernel.firstWrongResult(BlasKernelTest::sgemm, slightlyOff);
        assertNotNull(wrong, "an error a float gemm would hide is still wrong for a double one");
        assertTrue(wrong.startsWith("dgemm NoTrans x NoTrans"), wrong);
    }

    @Test
    void aWrongKernelIsRefusedWithTheVariableThatPicksAnother() {
        String message = BlasKernel.refusal("SkylakeX", "sgemm NoTrans x Trans, 33x17x29: relative error 3e-02");
        assertTrue(message.contains("SkylakeX computes wrong results"), message);
        assertTrue(message.contains("set OPENBLAS_CORETYPE to another kernel (one of Prescott, Sandybridge, Haswell)"),
                message);
        assertFalse(message.contains("\n"));
    }

    @Test
    void theKernelThisJvmLoadedComputesRightAndSaysWhoChoseIt() {
        BlasKernel kernel = BlasKernel.inUse(); // this JVM never called choose(): its environment decides
        assertFalse(kernel.kernel().isBlank());
        String env = System.getenv(BlasKernel.CORETYPE);
        assertEquals(env == null || env.isBlank() ? BlasKernel.BY_OPENBLAS : BlasKernel.BY_USER, kernel.chosenBy());
        assertEquals(kernel.kernel(), kernel.toMap().get("kernel"));
        assertEquals(kernel.chosenBy(), kernel.toMap().get("chosen_by"));
    }

    private static void sgemm(boolean ta, boolean tb, int m, int n, int k, float[] a, int lda, float[] b, int ldb,
                              float beta, float[] c, int ldc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                    sum += (double) (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                }
                c[i * ldc + j] = (float) (sum + beta * c[i * ldc + j]);
            }
        }
    }

    private static void dgemm(boolean ta, boolean tb, int m, int n, int k, double[] a, int lda, double[] b, int ldb,
                              double beta, double[] c, int ldc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                    sum += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                }
                c[i * ldc + j] = sum + beta * c[i * ldc + j];
            }
        }
    }
}
