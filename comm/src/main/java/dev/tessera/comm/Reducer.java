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
        boolean max = op == ReduceOp.MAX;
        switch (dtype) {
            case FLOAT32 -> {
                long n = bytes >> 2;
                for (long i = 0; i < n; i++) {
                    long d = dstAddr + (i << 2);
                    float a = UnsafeApi.getFloat(dstBase, d);
                    float b = UnsafeApi.getFloat(srcBase, srcAddr + (i << 2));
                    UnsafeApi.putFloat(dstBase, d, max ? Math.max(a, b) : a + b);
                }
            }
            case FLOAT64 -> {
                long n = bytes >> 3;
                for (long i = 0; i < n; i++) {
                    long d = dstAddr + (i << 3);
                    double a = UnsafeApi.getDouble(dstBase, d);
                    double b = UnsafeApi.getDouble(srcBase, srcAddr + (i << 3));
                    UnsafeApi.putDouble(dstBase, d, max ? Math.max(a, b) : a + b);
                }
            }
            case INT32 -> {
                long n = bytes >> 2;
                for (long i = 0; i < n; i++) {
                    long d = dstAddr + (i << 2);
                    int a = UnsafeApi.getInt(dstBase, d);
                    int b = UnsafeApi.getInt(srcBase, srcAddr + (i << 2));
                    UnsafeApi.putInt(dstBase, d, max ? Math.max(a, b) : a + b);
                }
            }
            case INT64 -> {
                long n = bytes >> 3;
                for (long i = 0; i < n; i++) {
                    long d = dstAddr + (i << 3);
                    long a = UnsafeApi.getLong(dstBase, d);
                    long b = UnsafeApi.getLong(srcBase, srcAddr + (i << 3));
                    UnsafeApi.putLong(dstBase, d, max ? Math.max(a, b) : a + b);
                }
            }
            case BYTE -> {
                for (long i = 0; i < bytes; i++) {
                    byte a = UnsafeApi.getByte(dstBase, dstAddr + i);
                    byte b = UnsafeApi.getByte(srcBase, srcAddr + i);
                    UnsafeApi.putByte(dstBase, dstAddr + i, (byte) (max ? Math.max(a, b) : a + b));
                }
            }
            default -> throw new IllegalStateException("unknown dtype " + dtype);
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
