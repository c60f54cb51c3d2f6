package dev.tessera.comm;

/** Element types a collective can carry; the size is what frames are cut and bounds-checked by. */
public enum DType {
    FLOAT32(4), FLOAT64(8), INT32(4), INT64(8), BYTE(1);

    private final int size;

    DType(int size) {
        this.size = size;
    }

    /** Bytes per element. */
    public int size() {
        return size;
    }

    boolean isFloatingPoint() {
        return this == FLOAT32 || this == FLOAT64;
    }
}
