package dev.tessera.comm.control;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.KryoException;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Kryo encoding of {@link ControlMessage}s: a one-byte message id (Kryo's class id + 2), then the message's
 * fields. A new message type of comm needs the next id ({@link #LAST_ID} moves with it) and an explicit serializer
 * that reads every length through {@link #checkedLength}; a type defined above comm (the job's assignment) comes
 * in as a {@link ControlType} with an id from {@link #FIRST_EXTENSION_ID} on. Not thread-safe: one instance per
 * thread that encodes or decodes (the control plane is not a hot path, so the byte copies here are fine).
 *
 * <p>Decoding never lets Kryo resolve a class from the wire: Kryo keeps its built-in registrations (String,
 * primitives, ...) even with registration required, and their readers allocate whatever length a frame claims.
 * Only this codec's ids are read, each by its own serializer.
 */
public final class ControlCodec {

    /** Control messages must fit in one Aeron fragment. */
    public static final int MAX_MESSAGE_BYTES = 16 * 1024;
    /** The message ids of this codec; every frame starts with one of them + 2 (Kryo's class id encoding). */
    public static final int FIRST_ID = 101;
    public static final int HELLO_ID = 101;
    public static final int LAST_ID = 108;
    /** Was the assignment with its job as JSON text; retired, never reused (the assignment is an extension now). */
    static final int RETIRED_ID = 104;
    /** The id of the first {@link ControlType}; further ones count up from it. */
    public static final int FIRST_EXTENSION_ID = LAST_ID + 1;
    /** Kryo writes a class id as a varint of id + 2; ours stay below 128, so that is exactly one byte. */
    private static final int WIRE_ID_OFFSET = 2;

    private final Kryo kryo = new Kryo();
    private final byte[] scratch = new byte[MAX_MESSAGE_BYTES];
    private final Output output = new Output(scratch);
    private final Input input = new Input(scratch);
    private final int lastId;

    /** A codec of comm's own messages only. */
    public ControlCodec() {
        this(List.of());
    }

    /** A codec of comm's own messages and {@code extensions}, whose ids run from {@link #FIRST_EXTENSION_ID}. */
    public ControlCodec(List<ControlType<?>> extensions) {
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
        int id = FIRST_EXTENSION_ID;
        for (ControlType<?> extension : extensions) {
            if (extension.id() != id) {
                throw new IllegalArgumentException("control type " + extension.type().getSimpleName() + " has id "
                        + extension.id() + "; the next free id is " + id);
            }
            register(extension);
            id++;
        }
        this.lastId = id - 1;
        for (id = FIRST_ID; id <= lastId; id++) {
            if ((kryo.getRegistration(id) == null) != (id == RETIRED_ID) || id + WIRE_ID_OFFSET >= 0x80) {
                throw new IllegalStateException("control message ids must be " + FIRST_ID + ".." + lastId
                        + " without gaps but " + RETIRED_ID + ", each one byte on the wire (id " + id + ")");
            }
        }
    }

    private <T extends ControlMessage> void register(ControlType<T> extension) {
        kryo.register(extension.type(), extension.serializer(), extension.id());
    }

    /**
     * The message id {@code frame} starts with, or -1 when it names none of comm's own messages. Reads one byte and
     * nothing else, so a receiver can refuse a frame by its type without decoding it.
     */
    public static int messageId(DirectBuffer buffer, int offset, int length) {
        if (length <= 0) {
            return -1;
        }
        int id = (buffer.getByte(offset) & 0xFF) - WIRE_ID_OFFSET;
        return id >= FIRST_ID && id <= LAST_ID && id != RETIRED_ID ? id : -1;
    }

    /** Whether {@code id} names a message of this codec: comm's own or one of its extensions. */
    private boolean knows(int id) {
        return id >= FIRST_ID && id <= lastId && id != RETIRED_ID;
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
        } catch (KryoException e) { // the only one Output throws: the frame is full
            throw new IllegalArgumentException("control message " + message.getClass().getSimpleName()
                    + " does not fit in one control frame of " + MAX_MESSAGE_BYTES
                    + " bytes (ControlCodec.MAX_MESSAGE_BYTES): " + e.getMessage(), e);
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
        int id = (buffer.getByte(offset) & 0xFF) - WIRE_ID_OFFSET;
        if (!knows(id)) {
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
