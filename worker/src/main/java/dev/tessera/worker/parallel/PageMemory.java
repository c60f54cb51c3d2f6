package dev.tessera.worker.parallel;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodType;
import jdk.incubator.foreign.CLinker;
import jdk.incubator.foreign.FunctionDescriptor;
import jdk.incubator.foreign.MemoryAddress;
import jdk.incubator.foreign.MemorySegment;
import jdk.incubator.foreign.ResourceScope;

/**
 * Physical pages behind native buffers. ZeRO keeps every replica's flat parameter and gradient buffers at their
 * full virtual size, so every layer's views stay valid, and gives the physical memory of the parts a rank does
 * not own back to the OS ({@code madvise(MADV_DONTNEED)}: private anonymous pages read as zeros afterwards and
 * cost nothing until written again). {@link #residentBytes} measures what a range really occupies
 * ({@code mincore}). Only whole pages inside a range are touched; the caller handles partial pages at its edges.
 */
public final class PageMemory {

    public static final long PAGE = 4096;
    private static final int MADV_DONTNEED = 4;
    private static final int MADV_NOHUGEPAGE = 15;
    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS_NORESERVE = 0x02 | 0x20 | 0x4000;
    private static final MethodHandle MADVISE;
    private static final MethodHandle MINCORE;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;

    static {
        CLinker linker = CLinker.getInstance();
        MADVISE = linker.downcallHandle(CLinker.systemLookup().lookup("madvise").orElseThrow(),
                MethodType.methodType(int.class, MemoryAddress.class, long.class, int.class),
                FunctionDescriptor.of(CLinker.C_INT, CLinker.C_POINTER, CLinker.C_LONG, CLinker.C_INT));
        MINCORE = linker.downcallHandle(CLinker.systemLookup().lookup("mincore").orElseThrow(),
                MethodType.methodType(int.class, MemoryAddress.class, long.class, MemoryAddress.class),
                FunctionDescriptor.of(CLinker.C_INT, CLinker.C_POINTER, CLinker.C_LONG, CLinker.C_POINTER));
        MMAP = linker.downcallHandle(CLinker.systemLookup().lookup("mmap").orElseThrow(),
                MethodType.methodType(MemoryAddress.class, MemoryAddress.class, long.class, int.class, int.class,
                        int.class, long.class),
                FunctionDescriptor.of(CLinker.C_POINTER, CLinker.C_POINTER, CLinker.C_LONG, CLinker.C_INT,
                        CLinker.C_INT, CLinker.C_INT, CLinker.C_LONG));
        MUNMAP = linker.downcallHandle(CLinker.systemLookup().lookup("munmap").orElseThrow(),
                MethodType.methodType(int.class, MemoryAddress.class, long.class),
                FunctionDescriptor.of(CLinker.C_INT, CLinker.C_POINTER, CLinker.C_LONG));
    }

    private PageMemory() {
    }

    /** First page boundary at or above {@code address}. */
    public static long pageUp(long address) {
        return (address + PAGE - 1) & -PAGE;
    }

    /** Last page boundary at or below {@code address}. */
    public static long pageDown(long address) {
        return address & -PAGE;
    }

    /**
     * Returns the whole pages inside {@code [address, address + bytes)} to the OS; they read as zeros afterwards.
     * Returns how many bytes that was.
     */
    public static long release(long address, long bytes) {
        long from = pageUp(address);
        long to = pageDown(address + bytes);
        if (to <= from) {
            return 0;
        }
        int rc;
        try {
            rc = (int) MADVISE.invokeExact(MemoryAddress.ofLong(from), to - from, MADV_DONTNEED);
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed", t);
        }
        if (rc != 0) {
            throw new IllegalStateException("madvise(MADV_DONTNEED) of " + (to - from) + " bytes at 0x"
                    + Long.toHexString(from) + " returned " + rc);
        }
        return to - from;
    }

    /**
     * Reserves {@code bytes} of private anonymous memory, page-aligned, that reads as zeros and takes no physical
     * memory until a page is first written (ND4J's allocations are set to zero, which touches every page). Not
     * counted against swap ({@code MAP_NORESERVE}): what a rank writes is its shard. {@link #unreserve} frees it.
     */
    public static long reserve(long bytes) {
        long length = Math.max(PAGE, pageUp(bytes));
        long address;
        try {
            address = ((MemoryAddress) MMAP.invokeExact(MemoryAddress.NULL, length, PROT_READ_WRITE,
                    MAP_PRIVATE_ANONYMOUS_NORESERVE, -1, 0L)).toRawLongValue();
        } catch (Throwable t) {
            throw new IllegalStateException("mmap failed", t);
        }
        if (address == -1L) {
            throw new OutOfMemoryError("mmap of " + length + " bytes of anonymous memory failed");
        }
        // Where transparent huge pages are always on, one written element would fault in 2 MiB of neighbours that
        // another rank owns: 4 KiB pages keep what is resident what was written (failure only costs that).
        try {
            int ignored = (int) MADVISE.invokeExact(MemoryAddress.ofLong(address), length, MADV_NOHUGEPAGE);
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed", t);
        }
        return address;
    }

    /** Unmaps what {@link #reserve reserve(bytes)} returned at {@code address}. */
    public static void unreserve(long address, long bytes) {
        int rc;
        try {
            rc = (int) MUNMAP.invokeExact(MemoryAddress.ofLong(address), Math.max(PAGE, pageUp(bytes)));
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
        if (rc != 0) {
            throw new IllegalStateException("munmap of " + bytes + " bytes at 0x" + Long.toHexString(address)
                    + " returned " + rc);
        }
    }

    /** Bytes of the pages overlapping {@code [address, address + bytes)} that are in physical memory now. */
    public static long residentBytes(long address, long bytes) {
        if (bytes <= 0) {
            return 0;
        }
        long from = pageDown(address);
        long to = pageUp(address + bytes);
        int pages = Math.toIntExact((to - from) / PAGE);
        try (ResourceScope scope = ResourceScope.newConfinedScope()) {
            MemorySegment vector = MemorySegment.allocateNative(pages, scope);
            int rc = (int) MINCORE.invokeExact(MemoryAddress.ofLong(from), to - from, vector.address());
            if (rc != 0) {
                throw new IllegalStateException("mincore of " + (to - from) + " bytes returned " + rc);
            }
            long resident = 0;
            for (int p = 0; p < pages; p++) {
                if ((jdk.incubator.foreign.MemoryAccess.getByteAtOffset(vector, p) & 1) != 0) {
                    resident += PAGE;
                }
            }
            return resident;
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mincore failed", t);
        }
    }
}
