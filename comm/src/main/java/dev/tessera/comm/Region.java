package dev.tessera.comm;

import org.agrona.DirectBuffer;

/** Raw memory of a buffer: {@code base == null} for off-heap memory, else the array {@code address} is in. */
record Region(Object base, long address, long length) {

    static Region of(DirectBuffer buffer) {
        return new Region(buffer.byteArray(), buffer.addressOffset(), buffer.capacity());
    }

    Region slice(long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset + bytes > length) {
            throw new IndexOutOfBoundsException("slice [" + offset + ", " + (offset + bytes) + ") of " + length);
        }
        return new Region(base, address + offset, bytes);
    }

    void copyTo(Region dst) {
        if (dst.base != base || dst.address != address) {
            org.agrona.UnsafeApi.copyMemory(base, address, dst.base, dst.address, Math.min(length, dst.length));
        }
    }
}
