package dev.tessera.comm.control;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.KryoException;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

import java.nio.charset.StandardCharsets;

/**
 * Kryo encoding of {@link ControlMessage}s: a one-byte message id (Kryo's class id + 2), then the message's
 * fields. A new message type needs the next id ({@link #LAST_ID} moves with it) and an explicit serializer that
 * reads every length through {@link #checkedLength}. Not thread-safe: one instance per thread that encodes or
 * decodes (the control plane is not a hot path, so the byte copies here are fine).
 *
 * <p>Decoding never lets Kryo resolve a class from the wire: Kryo keeps its built-in registrations (String,
 * primitives, ...) even with registration required, and their readers allocate whatever length a frame claims.
 * Only ids {@link #FIRST_ID}..{@link #LAST_ID} are read, each by its own serializer.
 */
public final class ControlCodec {

    /** Control messages must fit in one Aeron fragment. */
    public static final int MAX_MESSAGE_BYTES = 16 * 1024;
    /** The message ids of this codec; every frame starts with one of them + 2 (Kryo's class id encoding). */
    public static final int FIRST_ID = 101;
    public static final int HELLO_ID = 101;
    public static final int LAST_ID = 108;
    /** Kryo writes a class id as a varint of id + 2; ours stay below 128, so that is exactly one byte. */
    private static final int WIRE_ID_OFFSET = 2;

    private final Kryo kryo = new Kryo();
    private final byte[] scratch = new byte[MAX_MESSAGE_BYTES];
    private final Output output = new Output(scratch);
    private final Input input = new Input(scratch);

    public ControlCodec() {
        kryo.setRegistrationRequired(true);
        kryo.setReferences(false);
        // Ids are part of the wire format: append, never renumber. Each message has an explicit serializer
        // whose every length prefix is checked before anything is allocated (Kryo's own string and array
        // readers allocate whatever size the wire claims, which an unauthenticated peer could abuse).
        kryo.register(Hello.class, new Serializer<Hello>() {
            @Override
            public void write(Kryo k, Output out, Hello m) {
                writeString(out, m.jobId);
                out.writeInt(m.rank);
                writeBytes(out, m.tokenDigest);
                out.writeInt(m.dataSessionId);
                out.writeInt(m.controlSessionId);
            }

            @Override
            public Hello read(Kryo k, Input in, Class<? extends Hello> type) {
                return new Hello(readString(in), in.readInt(), readBytes(in), in.readInt(), in.readInt());
            }
        }, 101);
        kryo.register(Abort.class, new Serializer<Abort>() {
            @Override
            public void write(Kryo k, Output out, Abort m) {
                out.writeInt(m.groupId);
                out.writeInt(m.rank);
                writeString(out, m.reason);
            }

            @Override
            public Abort read(Kryo k, Input in, Class<? extends Abort> type) {
                return new Abort(in.readInt(), in.readInt(), readString(in));
            }
        }, 102);
        kryo.register(TextMessage.class, new Serializer<TextMessage>() {
            @Override
            public void write(Kryo k, Output out, TextMessage m) {
                writeString(out, m.text);
            }

            @Override
            public TextMessage read(Kryo k, Input in, Class<? extends TextMessage> type) {
                return new TextMessage(readString(in));
            }
        }, 103);
        JobMessageSerializers.register(kryo);
        for (int id = FIRST_ID; id <= LAST_ID; id++) {
            if (kryo.getRegistration(id) == null || id + WIRE_ID_OFFSET >= 0x80) {
                throw new IllegalStateException("control message ids must be " + FIRST_ID + ".." + LAST_ID
                        + " without gaps, each one byte on the wire (id " + id + ")");
            }
        }
    }

    /**
     * The message id {@code frame} starts with, or -1 when it names none of this codec's. Reads one byte and
     * nothing else, so a receiver can refuse a frame by its type without decoding it.
     */
    public static int messageId(DirectBuffer buffer, int offset, int length) {
        if (length <= 0) {
            return -1;
        }
        int id = (buffer.getByte(offset) & 0xFF) - WIRE_ID_OFFSET;
        return id >= FIRST_ID && id <= LAST_ID ? id : -1;
    }

    /** A length read from the wire, refused unless the frame still holds that many bytes. */
    static int checkedLength(Input in, int length) {
        int left = in.limit() - in.position();
        if (length < 0 || length > left) {
            throw new KryoException("length " + length + " outside [0, " + left + "] (the bytes left in the frame)");
        }
        return length;
    }

    /** Null as length -1; otherwise the length, then the bytes. */
    static void writeBytes(Output out, byte[] bytes) {
        out.writeVarInt(bytes == null ? 0 : bytes.length + 1, true);
        if (bytes != null) {
            out.writeBytes(bytes);
        }
    }

    static byte[] readBytes(Input in) {
        int lengthPlusOne = in.readVarInt(true);
        return lengthPlusOne == 0 ? null : in.readBytes(checkedLength(in, lengthPlusOne - 1));
    }

    static void writeString(Output out, String text) {
        writeBytes(out, text == null ? null : text.getBytes(StandardCharsets.UTF_8));
    }

    static String readString(Input in) {
        byte[] utf8 = readBytes(in);
        return utf8 == null ? null : new String(utf8, StandardCharsets.UTF_8);
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

    /**
     * Reads one message. A frame that is not exactly one message of this codec (unknown id, a length beyond the
     * frame, bytes left over) gives {@link IllegalArgumentException}; nothing larger than the frame is allocated.
     */
    public ControlMessage decode(DirectBuffer buffer, int offset, int length) {
        if (length <= 0 || length > MAX_MESSAGE_BYTES) {
            throw new IllegalArgumentException("control frame of " + length + " bytes (limit "
                    + MAX_MESSAGE_BYTES + ")");
        }
        int id = messageId(buffer, offset, length);
        if (id < 0) {
            throw new IllegalArgumentException("control frame starts with byte " + (buffer.getByte(offset) & 0xFF)
                    + ", which is no message id of this codec");
        }
        buffer.getBytes(offset, scratch, 0, length);
        input.setBuffer(scratch, 1, length - 1);
        Object message;
        try {
            message = kryo.readObject(input, kryo.getRegistration(id).getType());
        } catch (VirtualMachineError e) {
            throw e;
        } catch (Throwable e) { // a serializer's bug must not take the process down with it either
            throw new IllegalArgumentException("malformed control frame: " + e, e);
        }
        if (input.position() != length) {
            throw new IllegalArgumentException("control frame has " + (length - input.position())
                    + " bytes after its message");
        }
        return (ControlMessage) message;
    }
}
