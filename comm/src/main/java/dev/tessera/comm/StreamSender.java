package dev.tessera.comm;

/**
 * Sends one step's bytes to one peer as a run of frames, as far as the data is available and the publication
 * accepts it; called again from the progress loop until {@link #done()}. An empty step still sends one empty
 * frame, because the receiver counts arrival, not just bytes.
 */
final class StreamSender {

    private final Communicator comm;
    private final int peerRank;
    private final int groupId;
    private final int kind;
    private final int seq;
    private final int step;
    private final Object base;
    private final long address;
    private final long length;
    private long sent;
    private boolean started;

    StreamSender(Communicator comm, int peerRank, int groupId, int kind, int seq, int step,
                 Object base, long address, long length) {
        this.comm = comm;
        this.peerRank = peerRank;
        this.groupId = groupId;
        this.kind = kind;
        this.seq = seq;
        this.step = step;
        this.base = base;
        this.address = address;
        this.length = length;
    }

    /**
     * Sends what it can of the first {@code available} bytes (-1: none yet, not even the empty frame of an empty
     * step). Returns the frames sent; 0 when back-pressured or nothing new is available.
     */
    int push(long available, Object operation) {
        int frames = 0;
        while (available >= 0 && (sent < available || (!started && length == 0))
                && frames < Communicator.FRAGMENT_LIMIT) {
            int chunk = (int) Math.min(comm.maxPayload(), available - sent);
            if (!comm.trySend(peerRank, groupId, kind, seq, step, base, address + sent, chunk, sent, operation)) {
                break;
            }
            started = true;
            sent += chunk;
            frames++;
        }
        return frames;
    }

    boolean done() {
        return started && sent == length;
    }

    int peerRank() {
        return peerRank;
    }

    String progress() {
        return sent + " of " + length + " bytes sent";
    }
}
