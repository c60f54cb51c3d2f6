package dev.tessera.comm.control;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.KryoException;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.RecordComponent;
import java.util.Arrays;
import java.util.OptionalDouble;
import java.util.StringJoiner;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Kryo encoding of a record whose components are int, long, double, boolean, String (null allowed), an enum,
 * OptionalDouble, or a record of the same kinds: each component in declaration order, with no names and no class
 * ids. The types are checked when the serializer is made, not when a frame arrives. Reading checks every string
 * length against the frame and every enum ordinal against its enum, so a malformed frame fails with
 * {@link KryoException} and nothing larger than the frame is allocated.
 */
public final class RecordSerializer<R extends Record> extends Serializer<R> {

    private final Class<R> type;
    private final Constructor<R> constructor;
    private final Component[] components;

    public RecordSerializer(Class<R> type) {
        if (!type.isRecord()) {
            throw new IllegalArgumentException(type.getName() + " is not a record");
        }
        this.type = type;
        RecordComponent[] declared = type.getRecordComponents();
        this.components = new Component[declared.length];
        for (int i = 0; i < declared.length; i++) {
            components[i] = Component.of(type, declared[i]);
        }
        try {
            this.constructor = type.getDeclaredConstructor(
                    Arrays.stream(declared).map(RecordComponent::getType).toArray(Class<?>[]::new));
            constructor.setAccessible(true);
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(type.getName() + " has no canonical constructor", e);
        }
    }

    @Override
    public void write(Kryo kryo, Output out, R record) {
        for (Component c : components) {
            Object value;
            try {
                value = c.accessor.invoke(record);
            } catch (IllegalAccessException | InvocationTargetException e) {
                throw new IllegalStateException("cannot read " + type.getSimpleName() + "." + c.name, e);
            }
            if (value == null && !c.nullable) {
                throw new IllegalArgumentException(type.getSimpleName() + "." + c.name
                        + " is null; only strings may be null in a control message");
            }
            c.writer.accept(out, value);
        }
    }

    @Override
    public R read(Kryo kryo, Input in, Class<? extends R> ignored) {
        Object[] values = new Object[components.length];
        for (int i = 0; i < components.length; i++) {
            values[i] = components[i].reader.apply(in);
        }
        try {
            return constructor.newInstance(values);
        } catch (InvocationTargetException e) { // the record refused its values
            throw new KryoException(type.getSimpleName() + ": " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new KryoException("cannot build " + type.getSimpleName() + ": " + e, e);
        }
    }

    /**
     * The wire layout as text, e.g. {@code Job(name:String,size:int,kind:Kind{A,B})}: what a version number must
     * follow, so that a test can notice a layout change that came without one.
     */
    public String schema() {
        StringJoiner fields = new StringJoiner(",", type.getSimpleName() + "(", ")");
        for (Component c : components) {
            fields.add(c.name + ":" + c.schema);
        }
        return fields.toString();
    }

    /** One component: its accessor, how its value is written and read back, and its layout for {@link #schema}. */
    private record Component(String name, Method accessor, boolean nullable, BiConsumer<Output, Object> writer,
                             Function<Input, Object> reader, String schema) {

        @SuppressWarnings({"unchecked", "rawtypes"})
        static Component of(Class<?> owner, RecordComponent component) {
            String name = component.getName();
            Method accessor = component.getAccessor();
            accessor.setAccessible(true);
            Class<?> t = component.getType();
            if (t == int.class) {
                return new Component(name, accessor, false, (o, v) -> o.writeInt((Integer) v), Input::readInt, "int");
            } else if (t == long.class) {
                return new Component(name, accessor, false, (o, v) -> o.writeLong((Long) v), Input::readLong, "long");
            } else if (t == double.class) {
                return new Component(name, accessor, false, (o, v) -> o.writeDouble((Double) v), Input::readDouble,
                        "double");
            } else if (t == boolean.class) {
                return new Component(name, accessor, false, (o, v) -> o.writeBoolean((Boolean) v),
                        Input::readBoolean, "boolean");
            } else if (t == String.class) {
                return new Component(name, accessor, true, (o, v) -> ControlCodec.writeString(o, (String) v),
                        ControlCodec::readString, "String");
            } else if (t == OptionalDouble.class) {
                return new Component(name, accessor, false, (o, v) -> {
                    OptionalDouble d = (OptionalDouble) v;
                    o.writeBoolean(d.isPresent());
                    o.writeDouble(d.orElse(0));
                }, in -> {
                    boolean present = in.readBoolean();
                    double d = in.readDouble();
                    return present ? OptionalDouble.of(d) : OptionalDouble.empty();
                }, "OptionalDouble");
            } else if (t.isEnum()) {
                Object[] constants = t.getEnumConstants();
                return new Component(name, accessor, false, (o, v) -> o.writeVarInt(((Enum<?>) v).ordinal(), true),
                        in -> {
                            int ordinal = in.readVarInt(true);
                            if (ordinal < 0 || ordinal >= constants.length) {
                                throw new KryoException(name + ": no constant " + ordinal + " among "
                                        + constants.length);
                            }
                            return constants[ordinal];
                        }, Arrays.stream(constants).map(c -> ((Enum<?>) c).name())
                                .collect(Collectors.joining(",", t.getSimpleName() + "{", "}")));
            } else if (t.isRecord()) {
                RecordSerializer nested = new RecordSerializer<>(t.asSubclass(Record.class));
                return new Component(name, accessor, false, (o, v) -> nested.write(null, o, (Record) v),
                        in -> nested.read(null, in, null), nested.schema());
            }
            throw new IllegalArgumentException(owner.getSimpleName() + "." + name + " has type " + t.getSimpleName()
                    + ", which a control message cannot carry");
        }
    }
}
