package dev.tessera.comm.control;

import com.esotericsoftware.kryo.kryo5.Serializer;

/**
 * A control message defined above comm (the worker's job assignment, whose spec comm cannot see), added to a
 * {@link ControlCodec} through {@link dev.tessera.comm.CommConfig#withControlTypes}. {@code id} is part of the wire
 * format like the codec's own: the first such type takes {@link ControlCodec#FIRST_EXTENSION_ID}, the next one
 * more. The serializer must read every length through the frame's bounds, as {@link RecordSerializer} does.
 */
public record ControlType<T extends ControlMessage>(int id, Class<T> type, Serializer<T> serializer) {
}
