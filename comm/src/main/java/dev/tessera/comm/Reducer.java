package dev.tessera.comm;

import org.agrona.UnsafeApi;

/**
 * Element-wise {@code dst = dst op src} over raw memory ({@code base == null} means an off-heap address).
 * Plain counted loops over Unsafe: no boxing, no temporary arrays. Addition and max are commutative in IEEE
 * 754, so two ranks combining the same pair in either order get bit-identical results.
 */
final class Reducer {

    private Reducer() {
    }

    static void reduce(DType dtype, ReduceOp op, Object dstBase, long dstAddr, Object srcBase, long srcAddr,
                       long bytes) {
        combine(dtype, op, dstBase, dstAddr, dstBase, dstAddr, srcBase, srcAddr, bytes);
    }

    /** {@code dst = a op b} element-wise; {@code dst} may be {@code a} or {@code b}. */
    static void combine(DType dtype, ReduceOp op, Object dstBase, long dstAddr, Object aBase, long aAddr,
                        Object bBase, long bAddr, long bytes) {
        boolean max = op == ReduceOp.MAX;
        switch (dtype) {
            case FLOAT32 -> {
                for (long i = 0, n = bytes >> 2; i < n; i++) {
                    float a = UnsafeApi.getFloat(aBase, aAddr + (i << 2));
                    float b = UnsafeApi.getFloat(bBase, bAddr + (i << 2));
                    UnsafeApi.putFloat(dstBase, dstAddr + (i << 2), max ? Math.max(a, b) : a + b);
                }
            }
            case FLOAT64 -> {
                for (long i = 0, n = bytes >> 3; i < n; i++) {
                    double a = UnsafeApi.getDouble(aBase, aAddr + (i << 3));
                    double b = UnsafeApi.getDouble(bBase, bAddr + (i << 3));
                    UnsafeApi.putDouble(dstBase, dstAddr + (i << 3), max ? Math.max(a, b) : a + b);
                }
            }
            case INT32 -> {
                for (long i = 0, n = bytes >> 2; i < n; i++) {
                    int a = UnsafeApi.getInt(aBase, aAddr + (i << 2));
                    int b = UnsafeApi.getInt(bBase, bAddr + (i << 2));
                    UnsafeApi.putInt(dstBase, dstAddr + (i << 2), max ? Math.max(a, b) : a + b);
                }
            }
            case INT64 -> {
                for (long i = 0, n = bytes >> 3; i < n; i++) {
                    long a = UnsafeApi.getLong(aBase, aAddr + (i << 3));
                    long b = UnsafeApi.getLong(bBase, bAddr + (i << 3));
                    UnsafeApi.putLong(dstBase, dstAddr + (i << 3), max ? Math.max(a, b) : a + b);
                }
            }
            case BYTE -> {
                for (long i = 0; i < bytes; i++) {
                    byte a = UnsafeApi.getByte(aBase, aAddr + i);
                    byte b = UnsafeApi.getByte(bBase, bAddr + i);
                    UnsafeApi.putByte(dstBase, dstAddr + i, (byte) (max ? Math.max(a, b) : a + b));
                }
            }
            default -> throw new IllegalStateException("unknown dtype " + dtype);
        }
    }

    /** Bytes per block of {@link #reduceAll}: the running sum stays in L1 while the sources stream past. */
    private static final int BLOCK = 16 << 10;

    /**
     * {@code dst = ((s[0] op s[1]) op s[2]) ... op s[n-1]}, element by element in that order, from off-heap
     * sources into {@code dst} ({@code dstBase == null}: off-heap; it may be one of the sources). Block by block
     * through a small scratch, so each source is read once and {@code dst} written once.
     */
    static void reduceAll(DType dtype, ReduceOp op, long[] sources, Object dstBase, long dst, long bytes) {
        int n = sources.length;
        if (n == 1) {
            if (dstBase != null || sources[0] != dst) {
                UnsafeApi.copyMemory(null, sources[0], dstBase, dst, bytes);
            }
            return;
        }
        long scratch = ScratchBuffers.get(BLOCK).address();
        for (long at = 0; at < bytes; at += BLOCK) {
            long len = Math.min(BLOCK, bytes - at);
            Object accBase = n == 2 ? dstBase : null;
            long acc = n == 2 ? dst + at : scratch;
            combine(dtype, op, accBase, acc, null, sources[0] + at, null, sources[1] + at, len);
            for (int k = 2; k < n; k++) {
                Object toBase = k == n - 1 ? dstBase : null;
                long to = k == n - 1 ? dst + at : scratch;
                combine(dtype, op, toBase, to, accBase, acc, null, sources[k] + at, len);
                accBase = toBase;
                acc = to;
            }
        }
    }

    /** {@code buf /= divisor} element-wise, for {@link ReduceOp#AVG} after the sum. */
    static void divide(DType dtype, Object base, long addr, long bytes, int divisor) {
        if (dtype == DType.FLOAT32) {
            float f = divisor;
            for (long i = 0, n = bytes >> 2; i < n; i++) {
                long a = addr + (i << 2);
                UnsafeApi.putFloat(base, a, UnsafeApi.getFloat(base, a) / f);
            }
        } else if (dtype == DType.FLOAT64) {
            double f = divisor;
            for (long i = 0, n = bytes >> 3; i < n; i++) {
                long a = addr + (i << 3);
                UnsafeApi.putDouble(base, a, UnsafeApi.getDouble(base, a) / f);
            }
        } else {
            throw new IllegalArgumentException("AVG needs a floating-point dtype, not " + dtype);
        }
    }
}
