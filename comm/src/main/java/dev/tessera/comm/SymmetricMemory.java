package dev.tessera.comm;

import org.agrona.BufferUtil;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Memory that every member of a group on this host maps, like torch's symmetric memory or an NCCL registered
 * window: a collective on a buffer inside it reads the other members' copies straight out of their memory
 * instead of shipping bytes through Aeron's term buffers. An all-reduce then costs each byte one read per
 * member and one write where the ring costs two copies and a reduce per hop (see {@link SymmetricCollective}).
 *
 * <p>Each member's block is a file in the job's Aeron directory (so the driver's cleanup, and the sweep of a
 * crashed run's directory, cover it), mapped by its owner read-write and by the others read-only; the files
 * are unlinked as soon as everyone has mapped them, so nothing is left in {@code /dev/shm} even if a process
 * dies later. A block starts with a {@value #HEADER}-byte header: the member's barrier counter and the
 * descriptor of the operation it is in, which the others check against their own before touching memory.
 *
 * <p>A group whose members are not all on this host's driver, or one of whose members could not create its
 * block (a full {@code /dev/shm}), gets plain direct memory on every member; its collectives then take the Aeron
 * paths, so callers need not care where the group lives.
 */
public final class SymmetricMemory {

    static final int HEADER = 4096;
    private static final int COUNTER = 0;
    private static final int DESCRIPTOR = 64;     // code, offset, length: three longs
    private static final int OFFSETS = 128;       // an all-to-all's input block offsets, N + 1 longs
    static final int MAX_MEMBERS = (HEADER - OFFSETS) / Long.BYTES - 1;
    /** The largest block: one mapping, whose buffer an int indexes, holds the header and the data. */
    public static final long MAX_BYTES = Integer.MAX_VALUE - HEADER;

    private final ProcessGroup group;
    private final long bytes;
    private final long[] header;     // per group rank; this rank's is writable
    private final long[] data;       // per group rank
    private final UnsafeBuffer buffer;
    private final boolean shared;
    private final ByteBuffer[] mappings; // kept: a mapping lives as long as its buffer is reachable
    private long nextCounter;        // barrier counter values handed out to operations, in issue order
    private long nextTicket;
    private volatile long turn;      // the ticket of the operation allowed to run now
    private final Path dir;          // where the members' block files are: prefix + global rank
    private final String prefix;
    private Path ownFile;            // a staging block's file until every peer has mapped it

    private SymmetricMemory(ProcessGroup group, long bytes, ByteBuffer[] mappings, boolean shared, Path dir,
                            String prefix) {
        this.group = group;
        this.shared = shared;
        this.dir = dir;
        this.prefix = prefix;
        this.bytes = bytes;
        this.mappings = mappings;
        this.header = new long[mappings.length];
        this.data = new long[mappings.length];
        for (int r = 0; r < mappings.length; r++) {
            if (mappings[r] != null) {
                header[r] = BufferUtil.address(mappings[r]);
                data[r] = header[r] + HEADER;
            }
        }
        this.buffer = new UnsafeBuffer(data[group.rank()], (int) bytes);
    }

    /** Collective: every member calls it with the same size, in the same order as its other operations. */
    static SymmetricMemory allocate(ProcessGroup group, long bytes, int index) {
        if (bytes < 0 || bytes > MAX_BYTES) {
            throw new IllegalArgumentException("symmetric memory of " + bytes + " bytes: must be in [0, "
                    + MAX_BYTES + "]");
        }
        if (!group.onOneHost() || group.size() > MAX_MEMBERS) {
            return localOnly(group, bytes);
        }
        Path dir = Path.of(group.communicator().config().aeronDir(), "symmetric");
        String prefix = Integer.toHexString(group.id()) + "-" + index + "-";
        Path mine = dir.resolve(prefix + group.globalRank(group.rank()));
        ByteBuffer[] mappings = new ByteBuffer[group.size()];
        try {
            String failure = null;
            try {
                Files.createDirectories(dir);
                mappings[group.rank()] = create(mine, HEADER + bytes);
            } catch (IOException e) {
                failure = e.toString();
            }
            // Every member's file exists, or all of them fall back together (a full /dev/shm on one member
            // must not leave the others waiting on a path it does not take).
            if (!allSucceeded(group, failure == null)) {
                System.err.println("tessera: no symmetric memory for group '" + group.name() + "' (" + bytes
                        + " bytes in " + dir + (failure != null ? ": " + failure : " on another member")
                        + "); its collectives go through Aeron");
                return localOnly(group, bytes);
            }
            SymmetricMemory m = new SymmetricMemory(group, bytes, mappings, true, dir, prefix);
            int missing = m.mapPeers();
            if (missing >= 0) {
                throw new IllegalStateException("symmetric memory for group '" + group.name() + "': rank "
                        + group.globalRank(missing) + " agreed its block exists, but " + dir + " lacks it");
            }
            group.barrier(); // every member has mapped every file: the names are no longer needed
            return m;
        } finally {
            try {
                Files.deleteIfExists(mine);
            } catch (IOException ignored) {
                // The job directory's own cleanup removes it.
            }
        }
    }

    /**
     * A group's staging area for collectives on ordinary buffers ({@link SymmetricCollective#stagedAllReduce}),
     * created by the first of them. Each member creates and maps its own block without a word to the others
     * (under a temporary name, renamed once written, so a peer never maps half a file) and maps theirs when
     * they are there ({@link #mapPeers}); all members get there at the same operation.
     */
    static SymmetricMemory staging(ProcessGroup group, long bytes) {
        Path dir = Path.of(group.communicator().config().aeronDir(), "staging");
        String prefix = Integer.toHexString(group.id()) + "-";
        Path mine = dir.resolve(prefix + group.globalRank(group.rank()));
        Path partial = dir.resolve(mine.getFileName() + ".partial");
        ByteBuffer[] mappings = new ByteBuffer[group.size()];
        try {
            Files.createDirectories(dir);
            mappings[group.rank()] = create(partial, HEADER + bytes);
            Files.move(partial, mine, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("group '" + group.name() + "': cannot create its " + (HEADER + bytes)
                    + "-byte staging block in " + dir + " (is /dev/shm full?)", e);
        }
        SymmetricMemory m = new SymmetricMemory(group, bytes, mappings, true, dir, prefix);
        m.ownFile = mine;
        return m;
    }

    /** Maps the peers' blocks not mapped yet; returns a group rank whose file is not there yet, or -1. */
    int mapPeers() {
        for (int r = 0; r < mappings.length; r++) {
            if (mappings[r] != null) {
                continue;
            }
            Path file = dir.resolve(prefix + group.globalRank(r));
            if (!Files.exists(file)) {
                return r;
            }
            try {
                mappings[r] = mapPeer(file, HEADER + bytes, group, r);
            } catch (IOException e) {
                throw new UncheckedIOException("group '" + group.name() + "': cannot map rank "
                        + group.globalRank(r) + "'s block " + file, e);
            }
            header[r] = BufferUtil.address(mappings[r]);
            data[r] = header[r] + HEADER;
        }
        return -1;
    }

    /** Once every peer has mapped this member's staging block (it passed a barrier with all), its name can go. */
    void unlinkOwnFile() {
        if (ownFile != null) {
            try {
                Files.deleteIfExists(ownFile);
            } catch (IOException ignored) {
                // The job directory's own cleanup removes it.
            }
            ownFile = null;
        }
    }

    private static SymmetricMemory localOnly(ProcessGroup group, long bytes) {
        ByteBuffer[] mappings = new ByteBuffer[group.size()];
        mappings[group.rank()] = ByteBuffer.allocateDirect(HEADER + (int) bytes);
        return new SymmetricMemory(group, bytes, mappings, false, null, null);
    }

    private static boolean allSucceeded(ProcessGroup group, boolean ok) {
        UnsafeBuffer failed = new UnsafeBuffer(ByteBuffer.allocateDirect(Integer.BYTES));
        failed.putInt(0, ok ? 0 : 1);
        group.allReduce(failed, DType.INT32, ReduceOp.MAX);
        return failed.getInt(0) == 0;
    }

    /** Creates and maps this member's block; the pages are written once so a full /dev/shm fails here, not later. */
    private static MappedByteBuffer create(Path file, long length) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw"); FileChannel ch = raf.getChannel()) {
            ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(length, 1 << 20));
            for (long at = 0; at < length; ) {
                zeros.clear().limit((int) Math.min(zeros.capacity(), length - at));
                at += ch.write(zeros, at);
            }
            return ch.map(FileChannel.MapMode.READ_WRITE, 0, length);
        }
    }

    private static MappedByteBuffer mapPeer(Path file, long length, ProcessGroup group, int peer) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r"); FileChannel ch = raf.getChannel()) {
            if (ch.size() != length) {
                throw new IllegalArgumentException("symmetric memory on group '" + group.name() + "': rank "
                        + group.globalRank(peer) + " allocated " + (ch.size() - HEADER) + " bytes, this rank "
                        + (length - HEADER) + "; every member must allocate the same size");
            }
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, length);
        }
    }

    /** This member's memory. Collectives on buffers inside it (at the same offset on every member) read peers directly. */
    public UnsafeBuffer buffer() {
        return buffer;
    }

    /** The same memory as a direct ByteBuffer in native order (e.g. to put an ND4J array over it). */
    public ByteBuffer byteBuffer() {
        return mappings[group.rank()].slice(HEADER, (int) bytes).order(ByteOrder.nativeOrder());
    }

    public long address() {
        return data[group.rank()];
    }

    public long bytes() {
        return bytes;
    }

    /** Whether the other members' memory is mapped here (false when the group spans hosts). */
    public boolean isShared() {
        return shared;
    }

    ProcessGroup group() {
        return group;
    }

    /** Whether {@code r} lies inside this member's memory. */
    boolean contains(Region r) {
        return shared && r.base() == null && r.address() >= address() && r.address() + r.length() <= address() + bytes;
    }

    /** Where the byte at {@code localAddress} of this member is in member {@code groupRank}'s mapping. */
    long peerAddress(int groupRank, long localAddress) {
        return data[groupRank] + (localAddress - address());
    }

    // ---------------------------------------------------------------- barrier and descriptors

    /** Reserves an operation's place: its ticket and the first of {@code barriers} counter values. */
    synchronized long[] reserve(int barriers) {
        long[] ticketAndCounter = {nextTicket++, nextCounter};
        nextCounter += barriers;
        return ticketAndCounter;
    }

    boolean isTurnOf(long ticket) {
        return turn == ticket;
    }

    void endTurn(long ticket) {
        turn = ticket + 1;
    }

    void describe(long code, long offset, long length, long[] offsets) {
        long h = header[group.rank()];
        UnsafeApi.putLong(h + DESCRIPTOR, code);
        UnsafeApi.putLong(h + DESCRIPTOR + 8, offset);
        UnsafeApi.putLong(h + DESCRIPTOR + 16, length);
        if (offsets != null) {
            for (int j = 0; j < offsets.length; j++) {
                UnsafeApi.putLong(h + OFFSETS + 8L * j, offsets[j]);
            }
        }
    }

    /** Publishes that this member passed barrier {@code value} (everything written before is visible after). */
    void arrive(long value) {
        UnsafeApi.putLongRelease(null, header[group.rank()] + COUNTER, value);
    }

    long counterOf(int groupRank) {
        return UnsafeApi.getLongVolatile(null, header[groupRank] + COUNTER);
    }

    long descriptorOf(int groupRank, int field) {
        return UnsafeApi.getLong(header[groupRank] + DESCRIPTOR + 8L * field);
    }

    long offsetOf(int groupRank, int block) {
        return UnsafeApi.getLong(header[groupRank] + OFFSETS + 8L * block);
    }
}
