package dev.tessera.comm.control;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.KryoException;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Kryo encoding of {@link ControlMessage}s with registration required. Not thread-safe: one instance per
 * thread that encodes or decodes (the control plane is not a hot path, so the byte copies here are fine).
 */
public final class ControlCodec {

    /** Control messages must fit in one Aeron fragment. */
    public static final int MAX_MESSAGE_BYTES = 16 * 1024;

    private final Kryo kryo = new Kryo();
    private final byte[] scratch = new byte[MAX_MESSAGE_BYTES];
    private final Output output = new Output(scratch);
    private final Input input = new Input(scratch);

    public ControlCodec() {
        kryo.setRegistrationRequired(true);
        kryo.setReferences(false);
        // Ids are part of the wire format: append, never renumber.
        kryo.register(byte[].class, 100);
        kryo.register(Hello.class, 101);
        kryo.register(Abort.class, 102);
        kryo.register(TextMessage.class, 103);
        kryo.register(Assignment.class, 104);
        kryo.register(StepReport.class, 105);
        kryo.register(EvalReport.class, 106);
        kryo.register(CheckpointReport.class, 107);
        kryo.register(WorkerFinished.class, 108);
    }

    /** Writes {@code message} at {@code offset}; returns its length. */
    public int encode(ControlMessage message, MutableDirectBuffer buffer, int offset) {
        output.setBuffer(scratch, MAX_MESSAGE_BYTES);
        try {
            kryo.writeClassAndObject(output, message);
        } catch (KryoException e) {
            throw new IllegalArgumentException("control message " + message.getClass().getSimpleName()
                    + " is too large or not registered: " + e.getMessage(), e);
        }
        int length = output.position();
        buffer.putBytes(offset, scratch, 0, length);
        return length;
    }

    /** Reads one message; an unregistered class or a malformed frame gives {@link IllegalArgumentException}. */
    public ControlMessage decode(DirectBuffer buffer, int offset, int length) {
        if (length <= 0 || length > MAX_MESSAGE_BYTES) {
            throw new IllegalArgumentException("control frame of " + length + " bytes (limit "
                    + MAX_MESSAGE_BYTES + ")");
        }
        buffer.getBytes(offset, scratch, 0, length);
        input.setBuffer(scratch, 0, length);
        try {
            Object o = kryo.readClassAndObject(input);
            if (!(o instanceof ControlMessage message)) {
                throw new IllegalArgumentException("control frame holds a " + (o == null ? "null" : o.getClass()));
            }
            return message;
        } catch (KryoException | IndexOutOfBoundsException | NegativeArraySizeException e) {
            throw new IllegalArgumentException("malformed control frame: " + e.getMessage(), e);
        }
    }
}
