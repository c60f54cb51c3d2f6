package dev.tessera.worker.model;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_dgemm;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_sgemm;

import dev.tessera.optimizers.kernel.NativeMemory;
import java.lang.ref.Reference;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * C = op(A) op(B) + beta C on row-major matrices, straight into the OpenBLAS that ND4J itself loads. ND4J's
 * {@code Nd4j.gemm} builds an op, its context and argument lists on every call: 14-45 us of Java per call
 * (51 calls a step) and a stream of short-lived objects, whose compilation a one-core worker was still
 * paying for a hundred steps in. The kernel is the same either way: bytedeco's preset maps ND4J's
 * libopenblas.so.0 a second time under the name this class binds to (libopenblas_nolapack.so.0), and both copies
 * load with the kernel {@code BlasKernel} chose.
 */
final class Gemm {
    private Gemm() {
    }

    /** a: [M, K] (or [K, M] with transA), b: [K, N] (or [N, K] with transB), c: [M, N]. */
    static void gemm(INDArray a, INDArray b, INDArray c, boolean transA, boolean transB, double beta) {
        int m = rows(c);
        int n = cols(c);
        int k = transA ? rows(a) : cols(a);
        boolean fits = (transA ? cols(a) : rows(a)) == m && (transB ? cols(b) : rows(b)) == k
                && (transB ? rows(b) : cols(b)) == n;
        if (!fits) {
            throw new IllegalArgumentException("gemm shapes do not match: " + a.shapeInfoToString() + ", "
                    + b.shapeInfoToString() + " -> " + c.shapeInfoToString());
        }
        int ta = transA ? CblasTrans : CblasNoTrans;
        int tb = transB ? CblasTrans : CblasNoTrans;
        DataType dt = c.dataType();
        if (dt == DataType.FLOAT && a.dataType() == dt && b.dataType() == dt) {
            cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1f, NativeMemory.floats(a), ld(a), NativeMemory.floats(b),
                    ld(b), (float) beta, NativeMemory.floats(c), ld(c));
        } else if (dt == DataType.DOUBLE && a.dataType() == dt && b.dataType() == dt) {
            cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, NativeMemory.doubles(a), ld(a), NativeMemory.doubles(b),
                    ld(b), beta, NativeMemory.doubles(c), ld(c));
        } else {
            throw new IllegalArgumentException("gemm needs FLOAT or DOUBLE operands of one type, got "
                    + a.dataType() + ", " + b.dataType() + ", " + c.dataType());
        }
        // The pointers hold addresses only: the arrays must outlive the call.
        Reference.reachabilityFence(a);
        Reference.reachabilityFence(b);
        Reference.reachabilityFence(c);
    }

    private static int rows(INDArray x) {
        return Math.toIntExact(x.size(0));
    }

    private static int cols(INDArray x) {
        return Math.toIntExact(x.size(1));
    }

    /** Leading dimension of a 2-D C-order matrix whose rows may be spaced wider than they are long. */
    private static int ld(INDArray x) {
        if (x.rank() != 2 || x.ordering() != 'c' || x.size(1) > 1 && x.stride(1) != 1) {
            throw new IllegalArgumentException("gemm needs row-major 2-D matrices, got " + x.shapeInfoToString());
        }
        return Math.toIntExact(Math.max(x.stride(0), x.size(1)));
    }
}
