package dev.tessera.comm.compress;

/**
 * One tensor of a gradient bucket: its first element in the bucket, its element count, and its shape as a matrix
 * ({@code rows x cols}, row-major; a vector is {@code n x 1}), which PowerSGD factors.
 */
public record BucketLayer(String name, int index, int rows, int cols) {

    public BucketLayer {
        if (index < 0 || rows < 1 || cols < 1 || (long) rows * cols > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("layer '" + name + "': index " + index + ", shape " + rows + " x "
                    + cols + " does not fit a bucket");
        }
    }

    public int n() {
        return rows * cols;
    }

    public boolean isMatrix() {
        return rows > 1 && cols > 1;
    }
}
