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
 * Kryo encoding of {@link ControlMessage}s with registration required. A new message type needs an id and an
 * explicit serializer here that reads every length through {@link #checkedLength}. Not thread-safe: one instance per
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
    }

    static int checkedLength(int length) {
        if (length < 0 || length > MAX_MESSAGE_BYTES) {
            throw new KryoException("length " + length + " outside [0, " + MAX_MESSAGE_BYTES + "]");
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
        return lengthPlusOne == 0 ? null : in.readBytes(checkedLength(lengthPlusOne - 1));
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
