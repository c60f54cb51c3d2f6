package dev.tessera.comm;

import java.nio.ByteBuffer;

/** Per-thread direct scratch memory for small collectives; grows by doubling and is then reused. */
final class ScratchBuffers {

    private static final ThreadLocal<ByteBuffer> SCRATCH = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(0));

    private ScratchBuffers() {
    }

    static Region get(long bytes) {
        ByteBuffer current = SCRATCH.get();
        if (current.capacity() < bytes) {
            current = ByteBuffer.allocateDirect((int) Math.max(bytes, 2L * current.capacity()));
            SCRATCH.set(current);
        }
        return new Region(null, org.agrona.BufferUtil.address(current), bytes);
    }
}
