package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.tessera.comm.ChildJvm;
import dev.tessera.worker.blas.BlasKernel;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A child JVM of {@link GemmUnderEveryKernelTest}: chooses the kernel as every Tessera main does, then runs
 * GemmTest's checks and ND4J's own gemm under the kernel that loaded, and prints one line: the kernel, who chose
 * it, the kernels of every OpenBLAS copy mapped, and whether ND4J's copy was among them.
 */
public final class GemmKernelMain {

    static final String RESULT = "gemm-kernel-result";

    public static void main(String[] args) {
        BlasKernel.choose();
        BlasKernel kernel = BlasKernel.inUse();
        GemmTest.assertEveryTransposePairMatches();
        assertNd4jGemmMatches();
        // ND4J's libopenblas.so.0 and the copy Gemm binds to: every one must run the chosen kernel.
        Map<String, String> copies = BlasKernel.corenames();
        System.out.println("OpenBLAS kernel by library: " + copies);
        boolean nd4jCopy = copies.keySet().stream().anyMatch(f -> f.endsWith("/libopenblas.so.0"));
        System.out.println(RESULT + "\t" + kernel.kernel() + "\t" + kernel.chosenBy() + "\t"
                + String.join("/", new TreeSet<>(copies.values())) + "\t" + nd4jCopy);
        System.out.flush();
        Runtime.getRuntime().halt(0); // ND4J leaves non-daemon threads behind
    }

    /** The command that starts this main with this JVM's module flags and class path. */
    static List<String> command() {
        return ChildJvm.command(List.of("-Xmx1g"), GemmKernelMain.class.getName(), List.of());
    }

    /** ND4J's gemm, which goes through the same OpenBLAS, for every transpose pair. */
    private static void assertNd4jGemmMatches() {
        Nd4j.getRandom().setSeed(11);
        int m = 37;
        int n = 23;
        int k = 45;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                INDArray a = Nd4j.rand(DataType.FLOAT, ta ? k : m, ta ? m : k).subi(0.5);
                INDArray b = Nd4j.rand(DataType.FLOAT, tb ? n : k, tb ? k : n).subi(0.5);
                INDArray c = Nd4j.create(DataType.FLOAT, m, n);
                Nd4j.gemm(a, b, c, ta, tb, 1.0, 0.0);
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double want = 0;
                        for (int p = 0; p < k; p++) {
                            want += (ta ? a.getDouble(p, i) : a.getDouble(i, p))
                                    * (tb ? b.getDouble(j, p) : b.getDouble(p, j));
                        }
                        assertEquals(want, c.getDouble(i, j), 1e-4, "Nd4j.gemm ta=" + ta + " tb=" + tb);
                    }
                }
            }
        }
    }
}
