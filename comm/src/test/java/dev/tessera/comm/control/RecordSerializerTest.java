package dev.tessera.comm.control;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.OptionalDouble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A record carried as a control message defined above comm: every kind of component, and the codec's limits. */
class RecordSerializerTest {

    enum Colour { RED, GREEN, BLUE }

    record Inner(double ratio, String label) {
    }

    /** One component of every kind a control record may carry. */
    record Probe(int count, long seed, double rate, boolean on, String name, Colour colour, OptionalDouble beta,
                 Inner inner) implements ControlMessage {
    }

    record Unsupported(List<String> names) implements ControlMessage {
    }

    static final ControlType<Probe> PROBE = new ControlType<>(ControlCodec.FIRST_EXTENSION_ID, Probe.class,
            new RecordSerializer<>(Probe.class));

    static Probe probe(String name) {
        return new Probe(-3, 9_000_000_000L, 0.25, true, name, Colour.BLUE, OptionalDouble.of(0.9),
                new Inner(-1.5, "\u00e9t\u00e9"));
    }

    private final ControlCodec codec = new ControlCodec(List.of(PROBE));
    private final UnsafeBuffer buffer = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);

    private ControlMessage roundTrip(ControlMessage m) {
        int length = codec.encode(m, buffer, 0);
        return codec.decode(buffer, 0, length);
    }

    @Test
    void everyKindOfComponentSurvives() {
        assertEquals(probe("job"), roundTrip(probe("job")));
        Probe empty = new Probe(0, 0, Double.NaN, false, null, Colour.RED, OptionalDouble.empty(), new Inner(0, null));
        assertEquals(empty, roundTrip(empty));
    }

    @Test
    void schemaNamesEveryComponentInOrder() {
        assertEquals("Probe(count:int,seed:long,rate:double,on:boolean,name:String,colour:Colour{RED,GREEN,BLUE},"
                + "beta:OptionalDouble,inner:Inner(ratio:double,label:String))",
                new RecordSerializer<>(Probe.class).schema());
    }

    @Test
    void aCodecWithoutTheExtensionRefusesItsFrames() {
        int length = codec.encode(probe("x"), buffer, 0);
        assertThrows(IllegalArgumentException.class, () -> new ControlCodec().decode(buffer, 0, length));
    }

    @Test
    void extensionIdsAndTypesAreCheckedWhenTheCodecIsMade() {
        ControlType<Probe> skipping = new ControlType<>(ControlCodec.FIRST_EXTENSION_ID + 1, Probe.class,
                new RecordSerializer<>(Probe.class));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new ControlCodec(List.of(skipping)));
        assertTrue(e.getMessage().contains("the next free id is " + ControlCodec.FIRST_EXTENSION_ID), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new RecordSerializer<>(Unsupported.class));
        assertEquals("Unsupported.names has type List, which a control message cannot carry", e.getMessage());
    }

    @Test
    void onlyStringsMayBeNull() {
        Probe noColour = new Probe(1, 1, 1, true, "x", null, OptionalDouble.empty(), new Inner(0, null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> roundTrip(noColour));
        assertTrue(e.getMessage().contains("colour is null"), e.getMessage());
    }

    @Test
    void aMessageLargerThanAFrameIsRefusedNamingTheLimit() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> codec.encode(probe("x".repeat(ControlCodec.MAX_MESSAGE_BYTES)), buffer, 0));
        assertTrue(e.getMessage().startsWith("control message Probe does not fit in one control frame of "
                + ControlCodec.MAX_MESSAGE_BYTES + " bytes"), e.getMessage());
        // Just under the limit still fits: strings are bounded by the frame, not by a cap of their own.
        String longest = "x".repeat(ControlCodec.MAX_MESSAGE_BYTES - 64);
        assertEquals(probe(longest), roundTrip(probe(longest)));
    }
}
