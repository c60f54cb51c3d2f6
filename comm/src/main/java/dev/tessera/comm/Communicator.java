package dev.tessera.comm;

import dev.tessera.comm.control.Abort;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.Hello;
import io.aeron.Aeron;
import io.aeron.ChannelUri;
import io.aeron.Counter;
import io.aeron.ExclusivePublication;
import io.aeron.Image;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.aeron.logbuffer.BufferClaim;
import io.aeron.logbuffer.ControlledFragmentHandler;
import io.aeron.logbuffer.ControlledFragmentHandler.Action;
import io.aeron.logbuffer.Header;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;
import org.agrona.collections.Int2IntHashMap;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One per process: the Aeron client, a data and a control publication to every peer, and this rank's data
 * and control subscriptions. There is no receive thread: whichever thread is waiting for a collective takes
 * the poll lock and polls, landing each frame in the {@link RecvSlot} posted for its (group, sequence, source)
 * — the caller that waits is the one that spins, which is what makes a 4 KB all-reduce take tens of µs.
 *
 * <p>A frame for an operation that is not posted yet is left in the log ({@code ABORT}) until it is: frames
 * of one source arrive in order, so this holds back only that source, and the Aeron flow-control window is the
 * bound on how far a fast peer runs ahead. Hence every member must issue a group's collectives in the same
 * order (as with NCCL or torch.distributed).
 *
 * <p>Security: the first control message from a session must be a {@link Hello} carrying SHA-256(job id,
 * token). Authentication comes before decoding: a control frame from a session no Hello vouched for is read
 * only as far as its message id, and dropped unless that id is a Hello's; data frames from such sessions are
 * dropped by their session alone. Every length and offset read from a frame is checked before use, and a frame
 * that fails any check is dropped and counted, never thrown. The counters are Aeron counters in the driver's
 * directory ({@link #DROPPED_DATA_FRAMES_TYPE_ID} and the next two), so they can be read from outside the process.
 */
public final class Communicator implements AutoCloseable {

    static final int DATA_STREAM_BASE = 0x10000;
    static final int CONTROL_STREAM_BASE = 0x20000;
    /**
     * Fragments per poll, and frames per send burst ({@link StreamSender}): small batches (8 x 64 KB) keep
     * the ring's receive-reduce-forward cycle inside the L2/L3 caches instead of streaming megabytes through
     * DRAM between a send and the matching receive.
     */
    static final int FRAGMENT_LIMIT = 8;
    /** Aeron counter type ids of the three counters every communicator keeps (labels name job and rank). */
    public static final int DROPPED_DATA_FRAMES_TYPE_ID = 0x7E55_0001;
    public static final int DROPPED_CONTROL_FRAMES_TYPE_ID = 0x7E55_0002;
    public static final int REJECTED_HANDSHAKES_TYPE_ID = 0x7E55_0003;
    /** A hostile sender may cause a drop per frame; saying so once every 10 s keeps stderr readable. */
    private static final long DROP_LOG_INTERVAL_NS = TimeUnit.SECONDS.toNanos(10);

    private final CommConfig config;
    private final PeerDirectory directory;
    private final int rank;
    private final int worldSize;
    private final MediaDriverHost ownDriver;
    private final Aeron aeron;
    private final ExclusivePublication[] dataPubs;
    private final ExclusivePublication[] controlPubs;
    private final List<Subscription> dataSubs = new ArrayList<>();
    private final List<Subscription> controlSubs = new ArrayList<>();
    private final int maxPayload;
    private final byte[] tokenDigest;

    private final ReentrantLock pollLock = new ReentrantLock();
    /** Posted receives; guarded by {@link #pollLock}. Few at a time, so a list scan beats a map. */
    private final ArrayList<RecvSlot> slots = new ArrayList<>();
    private final Int2IntHashMap dataSessionToRank = new Int2IntHashMap(-1);
    private final Int2IntHashMap controlSessionToRank = new Int2IntHashMap(-1);
    private final AtomicReferenceArray<String> goneReason;
    private final Map<Integer, String> abortReasons = new java.util.concurrent.ConcurrentHashMap<>();
    /** Whether abortReasons may hold anything: waiting loops ask every idle cycle, and an Integer key allocates. */
    private volatile boolean anyAbort;
    private final ConcurrentLinkedQueue<ControlMessage> inbox = new ConcurrentLinkedQueue<>();
    private final ControlCodec pollCodec;
    private final ControlCodec sendCodec;
    private final UnsafeBuffer controlScratch = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
    private final Counter droppedFrames;
    private final AtomicLong dataBytesSent = new AtomicLong();
    private final Counter droppedControlFrames;
    private final Counter rejectedHandshakes;
    /** The counters' values when closed: their memory goes with the Aeron client. */
    private volatile long[] countsAtClose;
    /** When a dropped control frame was last logged; guarded by {@link #pollLock}. */
    private long lastDropLogNanos;
    private final ThreadLocal<BufferClaim> claims = ThreadLocal.withInitial(BufferClaim::new);
    private final Map<String, ProcessGroup> groups = new HashMap<>();
    private final ControlledFragmentHandler dataHandler = this::onDataFragment;
    private final ControlledFragmentHandler controlHandler = this::onControlFragment;
    private volatile String handshakeFailure;
    private volatile boolean closed;

    private Communicator(CommConfig config, PeerDirectory directory, int rank) {
        this.config = config;
        this.directory = directory;
        this.rank = rank;
        this.worldSize = directory.worldSize();
        this.goneReason = new AtomicReferenceArray<>(worldSize);
        this.tokenDigest = config.tokenDigest();
        this.pollCodec = new ControlCodec(config.controlTypes());
        this.sendCodec = new ControlCodec(config.controlTypes());
        // As a job's shared driver does: a starved peer's images live as long as this rank's waits for it.
        this.ownDriver = config.driverMode() == DriverMode.PER_PROCESS ? MediaDriverHost.launch(config.aeronDir(),
                config.mtu(), config.termLength(), Math.max(4_000, config.deadlineMs())) : null;
        Aeron client = null;
        try {
            client = Aeron.connect(new Aeron.Context()
                    .aeronDirectoryName(config.aeronDir())
                    .driverTimeoutMs(Math.max(10_000, config.deadlineMs()))
                    // Driver timeouts and the like: say so once per error; the waits then fail on their deadline.
                    .errorHandler(t -> System.err.println("tessera comm rank " + rank + ": Aeron client error: " + t)));
            this.aeron = client;
            String who = ": job " + config.jobId() + " rank " + rank;
            this.droppedFrames = aeron.addCounter(DROPPED_DATA_FRAMES_TYPE_ID, "tessera dropped data frames" + who);
            this.droppedControlFrames = aeron.addCounter(DROPPED_CONTROL_FRAMES_TYPE_ID,
                    "tessera dropped control frames" + who);
            this.rejectedHandshakes = aeron.addCounter(REJECTED_HANDSHAKES_TYPE_ID,
                    "tessera rejected handshakes" + who);
            this.dataPubs = new ExclusivePublication[worldSize];
            this.controlPubs = new ExclusivePublication[worldSize];
            boolean anyIpc = false;
            boolean anyUdp = false;
            for (int peer = 0; peer < worldSize; peer++) {
                if (peer == rank) {
                    continue;
                }
                boolean ipc = usesIpc(peer);
                anyIpc |= ipc;
                anyUdp |= !ipc;
                // Exclusive: a shared (concurrent) publication would merge all senders to one stream into one
                // session, and the session is what identifies the sender.
                dataPubs[peer] = aeron.addExclusivePublication(publicationChannel(peer, ipc), DATA_STREAM_BASE + peer);
                controlPubs[peer] = aeron.addExclusivePublication(publicationChannel(peer, ipc), CONTROL_STREAM_BASE + peer);
            }
            for (boolean ipc : new boolean[] {true, false}) {
                if (ipc ? anyIpc : anyUdp) {
                    String channel = ipc ? "aeron:ipc" : "aeron:udp?endpoint=" + directory.endpoint(rank).udpEndpoint();
                    dataSubs.add(aeron.addSubscription(channel, DATA_STREAM_BASE + rank, img -> { },
                            this::onImageGone));
                    controlSubs.add(aeron.addSubscription(channel, CONTROL_STREAM_BASE + rank));
                }
            }
            int payload = Integer.MAX_VALUE;
            for (ExclusivePublication p : dataPubs) {
                if (p != null) {
                    payload = Math.min(payload, p.maxPayloadLength());
                }
            }
            // Whole 8-byte elements per frame, so a reduce never splits an element across frames.
            this.maxPayload = worldSize == 1 ? 65536 : ((payload - DataFrame.HEADER_LENGTH) & ~7);
        } catch (RuntimeException e) {
            if (client != null) {
                client.close();
            }
            if (ownDriver != null) {
                ownDriver.close();
            }
            throw e;
        }
    }

    /**
     * Connects rank {@code rank} to every other rank of {@code directory} and runs the token handshake. Fails
     * with {@link CommException} naming the first peer that does not connect or answer within the deadline.
     */
    public static Communicator connect(CommConfig config, PeerDirectory directory, int rank) {
        if (rank < 0 || rank >= directory.worldSize()) {
            throw new UserInputException("rank " + rank + " is outside the world of " + directory.worldSize());
        }
        Communicator comm = new Communicator(config, directory, rank);
        try {
            comm.handshake();
        } catch (RuntimeException e) {
            comm.close();
            throw e;
        }
        return comm;
    }

    /** The host {@code rank} runs on, as the launcher named it: ranks with the same id share a host. */
    public String hostOf(int rank) {
        return directory.endpoint(rank).hostId();
    }

    boolean usesIpc(int peer) {
        return switch (config.transport()) {
            case IPC -> true;
            case UDP -> false;
            case AUTO -> config.driverMode() == DriverMode.SHARED_PER_HOST
                    && directory.endpoint(peer).hostId().equals(directory.endpoint(rank).hostId());
        };
    }

    private String publicationChannel(int peer, boolean ipc) {
        ChannelUri uri = ChannelUri.parse(ipc ? "aeron:ipc" : "aeron:udp");
        uri.put("term-length", Integer.toString(config.termLength()));
        uri.put("mtu", Integer.toString(config.mtu()));
        if (!ipc) {
            uri.put("endpoint", directory.endpoint(peer).udpEndpoint());
        }
        return uri.toString();
    }

    private void handshake() {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(config.deadlineMs());
        IdleStrategy idle = new BackoffIdleStrategy(10, 10, 1000, 1_000_000);
        for (int peer = 0; peer < worldSize; peer++) {
            while (peer != rank && !(dataPubs[peer].isConnected() && controlPubs[peer].isConnected())) {
                if (System.nanoTime() > deadline) {
                    throw new CommException("connect: rank " + peer + " did not connect to rank " + rank
                            + " within " + config.deadlineMs() + " ms (is it running? endpoint "
                            + directory.endpoint(peer) + ")", peer);
                }
                idle.idle();
            }
        }
        for (int peer = 0; peer < worldSize; peer++) {
            if (peer != rank) {
                sendControl(peer, new Hello(config.jobId(), rank, tokenDigest, dataPubs[peer].sessionId(),
                        controlPubs[peer].sessionId()), deadline, "connect");
            }
        }
        while (true) {
            int work = pollControl();
            if (handshakeFailure != null) {
                throw new CommException("connect: " + handshakeFailure, -1);
            }
            int missing = firstPeerWithoutHello();
            if (missing < 0) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new CommException("connect: rank " + missing + " did not complete the handshake with rank "
                        + rank + " within " + config.deadlineMs() + " ms", missing);
            }
            idle.idle(work);
        }
    }

    private int firstPeerWithoutHello() {
        pollLock.lock();
        try {
            for (int peer = 0; peer < worldSize; peer++) {
                if (peer != rank && !controlSessionToRank.containsValue(peer)) {
                    return peer;
                }
            }
            return -1;
        } finally {
            pollLock.unlock();
        }
    }

    // ---------------------------------------------------------------- groups

    /** The group of all ranks, named "world". */
    public ProcessGroup world() {
        int[] all = new int[worldSize];
        for (int i = 0; i < worldSize; i++) {
            all[i] = i;
        }
        return group("world", all);
    }

    /**
     * The group {@code name} of the given global ranks (like torch.distributed.new_group). Every member must
     * create it with the same name and ranks; a group is identified on the wire by its name. Ranks that are
     * not members may skip the call.
     */
    public synchronized ProcessGroup group(String name, int[] ranks) {
        ProcessGroup existing = groups.get(name);
        if (existing != null) {
            if (!java.util.Arrays.equals(existing.ranks(), ranks)) {
                throw new IllegalArgumentException("group '" + name + "' already exists with other ranks");
            }
            return existing;
        }
        ProcessGroup g = new ProcessGroup(this, name, ranks);
        for (ProcessGroup other : groups.values()) {
            if (other.id() == g.id()) {
                throw new IllegalArgumentException("group names '" + name + "' and '" + other.name()
                        + "' collide on the wire; rename one");
            }
        }
        groups.put(name, g);
        return g;
    }

    public int rank() {
        return rank;
    }

    public int worldSize() {
        return worldSize;
    }

    public CommConfig config() {
        return config;
    }

    /**
     * Bytes of data frames (header and payload) this rank has handed to Aeron since it started, to any peer and on
     * any group: what gradient compression reports as sent. Collectives over {@link SymmetricMemory} move no frames
     * and are not counted.
     */
    public long dataBytesSent() {
        return dataBytesSent.get();
    }

    /** Data frames dropped: unknown session, malformed header, or not fitting the posted receive. */
    public long droppedFrames() {
        return count(droppedFrames, 0);
    }

    /** Control frames dropped: from a session without a Hello (other than a Hello), or not one whole message. */
    public long droppedControlFrames() {
        return count(droppedControlFrames, 1);
    }

    /** The stream id of {@code rank}'s control subscription (where its peers, and its Hellos, arrive). */
    public static int controlStreamId(int rank) {
        return CONTROL_STREAM_BASE + rank;
    }

    /** Hello messages refused: wrong job, wrong token, or a rank already bound. */
    public long rejectedHandshakes() {
        return count(rejectedHandshakes, 2);
    }

    private long count(Counter counter, int index) {
        long[] atClose = countsAtClose;
        return atClose != null ? atClose[index] : counter.get();
    }

    /** Whether every peer publication uses IPC (otherwise at least one goes over UDP). */
    public boolean allIpc() {
        for (int peer = 0; peer < worldSize; peer++) {
            if (peer != rank && !usesIpc(peer)) {
                return false;
            }
        }
        return true;
    }

    int maxPayload() {
        return maxPayload;
    }

    // ---------------------------------------------------------------- control messages

    /** Sends a control message to {@code peer}, waiting out back-pressure up to the deadline. */
    public void sendControl(int peer, ControlMessage message) {
        sendControl(peer, message, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(config.deadlineMs()),
                "send control message");
    }

    private synchronized void sendControl(int peer, ControlMessage message, long deadline, String operation) {
        int length = sendCodec.encode(message, controlScratch, 0);
        // The control stream reads whole fragments: a longer message would arrive in pieces and be dropped.
        int fragment = controlPubs[peer].maxPayloadLength();
        if (length > fragment) {
            throw new IllegalArgumentException("control message " + message.getClass().getSimpleName() + " of "
                    + length + " bytes is larger than one fragment of the control stream (" + fragment
                    + " bytes at mtu " + config.mtu() + ")");
        }
        IdleStrategy idle = new BackoffIdleStrategy(10, 10, 1000, 1_000_000);
        while (true) {
            long result = controlPubs[peer].offer(controlScratch, 0, length);
            if (result > 0) {
                return;
            }
            if (result == Publication.NOT_CONNECTED || result == Publication.CLOSED
                    || result == Publication.MAX_POSITION_EXCEEDED) {
                throw new CommException(operation + ": control stream to rank " + peer + " is "
                        + Publication.errorString(result), peer);
            }
            if (System.nanoTime() > deadline) {
                throw new CommException(operation + ": rank " + peer + " did not take a control message within "
                        + config.deadlineMs() + " ms (back-pressured)", peer);
            }
            idle.idle();
        }
    }

    /** The next control message received from an authenticated peer, or null. Polls if nobody else does. */
    public ControlMessage pollControlMessage() {
        pollOnce();
        return inbox.poll();
    }

    // ---------------------------------------------------------------- progress

    void post(RecvSlot slot) {
        pollLock.lock();
        try {
            slots.add(slot);
        } finally {
            pollLock.unlock();
        }
    }

    void retire(RecvSlot slot) {
        pollLock.lock();
        try {
            slots.remove(slot);
        } finally {
            pollLock.unlock();
        }
    }

    /** Polls the subscriptions unless another thread is polling right now; returns the fragments handled. */
    int pollOnce() {
        if (!pollLock.tryLock()) {
            return 0;
        }
        try {
            int work = 0;
            for (int i = 0, n = dataSubs.size(); i < n; i++) {
                work += dataSubs.get(i).controlledPoll(dataHandler, FRAGMENT_LIMIT);
            }
            for (int i = 0, n = controlSubs.size(); i < n; i++) {
                work += controlSubs.get(i).controlledPoll(controlHandler, FRAGMENT_LIMIT);
            }
            return work;
        } finally {
            pollLock.unlock();
        }
    }

    private int pollControl() {
        pollLock.lock();
        try {
            int work = 0;
            for (Subscription s : controlSubs) {
                work += s.controlledPoll(controlHandler, FRAGMENT_LIMIT);
            }
            return work;
        } finally {
            pollLock.unlock();
        }
    }

    private Action onDataFragment(DirectBuffer buffer, int offset, int length, Header header) {
        int src = dataSessionToRank.get(header.sessionId());
        if (src < 0 || length < DataFrame.HEADER_LENGTH || DataFrame.srcRank(buffer, offset) != src
                || DataFrame.payloadLength(buffer, offset) != length - DataFrame.HEADER_LENGTH) {
            droppedFrames.increment();
            return Action.CONTINUE;
        }
        int groupId = DataFrame.groupId(buffer, offset);
        int kind = DataFrame.kind(buffer, offset);
        int seq = DataFrame.seq(buffer, offset);
        RecvSlot slot = null;
        for (int i = 0, n = slots.size(); i < n; i++) {
            RecvSlot s = slots.get(i);
            if (s.matches(groupId, kind, seq, src)) {
                slot = s;
                break;
            }
        }
        if (slot == null) {
            return Action.ABORT; // not posted yet: leave it in the log, see the class comment
        }
        if (!slot.land(DataFrame.step(buffer, offset), DataFrame.streamOffset(buffer, offset), buffer,
                offset + DataFrame.HEADER_LENGTH, length - DataFrame.HEADER_LENGTH)) {
            droppedFrames.increment();
        }
        return Action.CONTINUE;
    }

    private Action onControlFragment(DirectBuffer buffer, int offset, int length, Header header) {
        int session = header.sessionId();
        int src = controlSessionToRank.get(session);
        if (src < 0 && ControlCodec.messageId(buffer, offset, length) != ControlCodec.HELLO_ID) {
            dropControlFrame(session, "a session without a Hello sent something else");
            return Action.CONTINUE;
        }
        ControlMessage message;
        try {
            message = pollCodec.decode(buffer, offset, length);
        } catch (IllegalArgumentException e) {
            dropControlFrame(session, e.getMessage());
            return Action.CONTINUE;
        }
        if (src < 0) {
            acceptHello((Hello) message, session);
            return Action.CONTINUE;
        }
        if (message instanceof Abort abort) {
            abortReasons.putIfAbsent(abort.groupId, "rank " + abort.rank + " aborted: " + abort.reason);
            anyAbort = true;
        } else if (!(message instanceof Hello)) {
            inbox.add(message);
        }
        return Action.CONTINUE;
    }

    /** Counts the frame, and says so on stderr at most every {@link #DROP_LOG_INTERVAL_NS}. */
    private void dropControlFrame(int session, String why) {
        long dropped = droppedControlFrames.increment() + 1;
        long now = System.nanoTime();
        if (dropped == 1 || now - lastDropLogNanos >= DROP_LOG_INTERVAL_NS) {
            lastDropLogNanos = now;
            System.err.println("tessera comm rank " + rank + ": dropped a control frame from session " + session
                    + ": " + why + " (" + dropped + " dropped so far)");
        }
    }

    private void acceptHello(Hello hello, int controlSession) {
        String problem = null;
        if (!config.jobId().equals(hello.jobId)) {
            problem = "a process claiming rank " + hello.rank + " belongs to job '" + hello.jobId + "', not '"
                    + config.jobId() + "'";
        } else if (hello.tokenDigest == null || !MessageDigest.isEqual(hello.tokenDigest, tokenDigest)) {
            problem = "rank " + hello.rank + " presented a wrong job token for job '" + config.jobId()
                    + "' (or this rank has the wrong one); handshake rejected";
        } else if (hello.rank < 0 || hello.rank >= worldSize || hello.rank == rank
                || controlSessionToRank.containsValue(hello.rank)) {
            problem = "a Hello claimed rank " + hello.rank + ", which is not a free peer rank of this job";
        }
        if (problem != null) {
            rejectedHandshakes.increment();
            if (handshakeFailure == null && firstPeerWithoutHelloUnlocked() >= 0) {
                handshakeFailure = problem;
            }
            return;
        }
        controlSessionToRank.put(controlSession, hello.rank);
        dataSessionToRank.put(hello.dataSessionId, hello.rank);
    }

    private int firstPeerWithoutHelloUnlocked() {
        for (int peer = 0; peer < worldSize; peer++) {
            if (peer != rank && !controlSessionToRank.containsValue(peer)) {
                return peer;
            }
        }
        return -1;
    }

    private void onImageGone(Image image) {
        pollLock.lock(); // the session map is guarded by the poll lock
        int src;
        try {
            src = dataSessionToRank.get(image.sessionId());
        } finally {
            pollLock.unlock();
        }
        if (src >= 0) {
            goneReason.compareAndSet(src, null, "its data stream closed (the process exited or was killed)");
        }
    }

    /** Why {@code peer} is gone, or null while it is there. */
    String goneReason(int peer) {
        String reason = goneReason.get(peer);
        if (reason == null && dataPubs[peer] != null && !dataPubs[peer].isConnected()) {
            return "it no longer subscribes to this rank's frames (the process exited or was killed)";
        }
        return reason;
    }

    String abortReason(int groupId) {
        return anyAbort ? abortReasons.get(groupId) : null;
    }

    void clearAbort(int groupId) {
        abortReasons.remove(groupId);
    }

    /** Tells the members of a group that an operation failed here; best effort, never blocks. */
    void broadcastAbort(ProcessGroup group, String reason) {
        String text = reason.length() > 2000 ? reason.substring(0, 2000) : reason;
        for (int member : group.ranks()) {
            if (member == rank || controlPubs[member] == null) {
                continue;
            }
            synchronized (this) {
                int length = sendCodec.encode(new Abort(group.id(), rank, text), controlScratch, 0);
                controlPubs[member].offer(controlScratch, 0, length);
            }
        }
    }

    /**
     * Writes one frame with {@code tryClaim}: the payload is copied once, from the caller's memory into the
     * term buffer. Returns false when back-pressured (try again later); a closed or disconnected peer is an
     * error naming it.
     */
    boolean trySend(int peer, int groupId, int kind, int seq, int step, Object base, long address, int length,
                    long streamOffset, Object operation) {
        BufferClaim claim = claims.get();
        ExclusivePublication pub = dataPubs[peer];
        long result;
        // An exclusive publication is single-writer; groups on other threads may send to the same peer.
        synchronized (pub) {
            result = pub.tryClaim(DataFrame.HEADER_LENGTH + length, claim);
            if (result > 0) {
                MutableDirectBuffer out = claim.buffer();
                int at = claim.offset();
                DataFrame.writeHeader(out, at, groupId, kind, seq, rank, step, length, streamOffset);
                if (length > 0) {
                    UnsafeApi.copyMemory(base, address, out.byteArray(),
                            out.addressOffset() + at + DataFrame.HEADER_LENGTH, length);
                }
                claim.commit();
                dataBytesSent.getAndAdd(DataFrame.HEADER_LENGTH + length);
                return true;
            }
        }
        if (result == Publication.BACK_PRESSURED || result == Publication.ADMIN_ACTION) {
            return false;
        }
        String why = goneReason.get(peer);
        throw new CommException(operation + ": cannot send to rank " + peer + ": "
                + (why != null ? why : "publication " + Publication.errorString(result)), peer);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (ProcessGroup g : groups.values()) {
            g.shutdownAsync();
        }
        countsAtClose = new long[] {droppedFrames.get(), droppedControlFrames.get(), rejectedHandshakes.get()};
        aeron.close();
        if (ownDriver != null) {
            ownDriver.close();
        }
    }
}
