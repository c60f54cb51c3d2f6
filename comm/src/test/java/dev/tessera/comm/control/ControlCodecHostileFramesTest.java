package dev.tessera.comm.control;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Frames nobody should send: the codec refuses each with {@link IllegalArgumentException} (or decodes it, when a
 * mutation happens to leave a well-formed message) and never allocates much more than the frame itself.
 */
class ControlCodecHostileFramesTest {

    /** Per decode: the frame copy is in preallocated scratch; an exception and its message are a few KB. */
    private static final long ALLOCATION_LIMIT = 256 * 1024;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private final ControlCodec codec = new ControlCodec(List.of(RecordSerializerTest.PROBE));
    private final UnsafeBuffer buffer = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);

    /** Decodes {@code frame}: a message or IllegalArgumentException, within the allocation limit. */
    private ControlMessage decodeBounded(byte[] frame) {
        buffer.putBytes(0, frame);
        long thread = Thread.currentThread().getId();
        long before = THREADS.getThreadAllocatedBytes(thread);
        ControlMessage message = null;
        try {
            message = codec.decode(buffer, 0, frame.length);
        } catch (IllegalArgumentException expected) {
            // the documented refusal
        } catch (Throwable e) {
            fail("frame " + HexFormat.of().formatHex(frame) + " threw " + e, e);
        }
        long allocated = THREADS.getThreadAllocatedBytes(thread) - before;
        assertTrue(allocated <= ALLOCATION_LIMIT, () -> "frame " + HexFormat.of().formatHex(frame) + " made the decoder"
                + " allocate " + allocated + " bytes");
        return message;
    }

    private void assertRefused(byte[] frame) {
        buffer.putBytes(0, frame);
        assertThrows(IllegalArgumentException.class, () -> codec.decode(buffer, 0, frame.length),
                () -> HexFormat.of().formatHex(frame));
        decodeBounded(frame);
    }

    @Test
    void theCampaignsFramesAndEveryOtherForeignIdAreRefused() {
        // 03 = Kryo's built-in java.lang.String with a length of 2^31; 0F another built-in; 01 a class by name.
        assertRefused(HexFormat.of().parseHex("03ffffffff07"));
        assertRefused(HexFormat.of().parseHex("0f"));
        assertRefused(HexFormat.of().parseHex("01ffffffff07"));
        for (int first = 0; first < 256; first++) {
            int id = first - 2;
            if (id >= ControlCodec.FIRST_ID && id <= ControlCodec.LAST_ID) {
                continue;
            }
            for (String tail : List.of("", "ffffffff07", "ffffffff0f00", "80808080018080", "0001020304050607")) {
                assertRefused(HexFormat.of().parseHex(String.format("%02x", first) + tail));
            }
        }
    }

    @Test
    void ourIdsWithHugeOrNegativeLengthsAreRefused() {
        for (int id = ControlCodec.FIRST_ID; id <= ControlCodec.LAST_ID; id++) {
            String head = String.format("%02x", id + 2);
            for (String tail : List.of("", "ffffffff07", "ffffffff0f", "80808080", "00000000ffffffff07",
                    "00000000000000000000000000000000ffffffff07")) {
                assertRefused(HexFormat.of().parseHex(head + tail));
            }
        }
    }

    @Test
    void everyTruncationAndEveryExtraByteOfEveryMessageIsRefused() {
        for (byte[] valid : validFrames()) {
            assertInstanceOf(ControlMessage.class, decodeBounded(valid));
            for (int length = 1; length < valid.length; length++) {
                assertRefused(java.util.Arrays.copyOf(valid, length));
            }
            byte[] longer = java.util.Arrays.copyOf(valid, valid.length + 1);
            assertRefused(longer);
        }
    }

    @Test
    void aRecordExtensionRefusesTruncationsExtraBytesBadOrdinalsAndHugeLengths() {
        byte[] valid = extensionFrame();
        assertInstanceOf(RecordSerializerTest.Probe.class, decodeBounded(valid));
        for (int length = 1; length < valid.length; length++) {
            assertRefused(java.util.Arrays.copyOf(valid, length));
        }
        assertRefused(java.util.Arrays.copyOf(valid, valid.length + 1));
        // id, count (4), seed (8), rate (8), on (1): then the name's length, then "x", then the colour's ordinal.
        int name = 1 + 4 + 8 + 8 + 1;
        for (String huge : List.of("ffffffff07", "ffffffff0f")) { // 2^31 - 1 and -1
            byte[] b = valid.clone();
            System.arraycopy(HexFormat.of().parseHex(huge), 0, b, name, 5);
            assertRefused(b);
        }
        byte[] badOrdinal = valid.clone();
        badOrdinal[name + 2] = 3; // Colour has three constants
        assertRefused(badOrdinal);
        SplittableRandom random = new SplittableRandom(13);
        for (int i = 0; i < 20_000; i++) {
            decodeBounded(mutate(valid, random));
        }
    }

    /** A {@link RecordSerializerTest.Probe} named "x". */
    static byte[] extensionFrame() {
        ControlCodec codec = new ControlCodec(List.of(RecordSerializerTest.PROBE));
        UnsafeBuffer out = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
        int length = codec.encode(RecordSerializerTest.probe("x"), out, 0);
        byte[] frame = new byte[length];
        out.getBytes(0, frame);
        return frame;
    }

    @Test
    void randomAndMutatedFramesNeverEscapeTheDocumentedException() {
        SplittableRandom random = new SplittableRandom(12);
        List<byte[]> valid = validFrames();
        int decoded = 0;
        for (int i = 0; i < 50_000; i++) {
            byte[] frame = i % 2 == 0 ? randomFrame(random) : mutate(valid.get(random.nextInt(valid.size())), random);
            if (frame.length > 0 && decodeBounded(frame) != null) {
                decoded++;
            }
        }
        // Mutated doubles still make valid reports: the test must have reached the serializers, not just the id.
        assertTrue(decoded > 0, "no frame decoded at all");
    }

    @Test
    void framesBeyondTheLimitAreRefusedByLength() {
        assertThrows(IllegalArgumentException.class, () -> codec.decode(buffer, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> codec.decode(buffer, 0, -1));
        assertThrows(IllegalArgumentException.class, () -> codec.decode(buffer, 0, ControlCodec.MAX_MESSAGE_BYTES + 1));
    }

    @Test
    void messageIdReadsOnlyTheFirstByte() {
        for (byte[] valid : validFrames()) {
            buffer.putBytes(0, valid);
            int id = ControlCodec.messageId(buffer, 0, valid.length);
            assertTrue(id >= ControlCodec.FIRST_ID && id <= ControlCodec.LAST_ID, "id " + id);
            assertEquals(id, ControlCodec.messageId(buffer, 0, 1));
        }
        buffer.putBytes(0, HexFormat.of().parseHex("03ffffffff07"));
        assertEquals(-1, ControlCodec.messageId(buffer, 0, 6));
        assertEquals(-1, ControlCodec.messageId(buffer, 0, 0));
    }

    /** One encoding of every message type, strings and byte arrays included. */
    static List<byte[]> validFrames() {
        ControlCodec codec = new ControlCodec();
        UnsafeBuffer out = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
        WorkerFinished finished = WorkerFinished.failed(1, "rank 1 failed: disk full", false, 0);
        finished.steps = 7;
        List<ControlMessage> messages = List.of(new Hello("job-0a1b", 1, new byte[32], 17, 18),
                new Abort(3, 1, "rank 1 aborted"), new TextMessage("status"),
                new StepReport(0, 5, 2.5, 1.0, 1e-3, 0.5, 100, 0.1, 0.01, 0.02, 4096, 2, new double[] {1, 0.1, 1.2, 0.3, 0.4, 0.6}),
                new EvalReport(0, 5, 2.4), new CheckpointReport(0, 4, "/runs/a/checkpoints/step-4"), finished);
        List<byte[]> frames = new ArrayList<>();
        for (ControlMessage m : messages) {
            int length = codec.encode(m, out, 0);
            byte[] frame = new byte[length];
            out.getBytes(0, frame);
            frames.add(frame);
        }
        return frames;
    }

    static byte[] randomFrame(SplittableRandom random) {
        byte[] frame = new byte[1 + random.nextInt(random.nextBoolean() ? 16 : 512)];
        for (int i = 0; i < frame.length; i++) {
            frame[i] = (byte) random.nextInt(256);
        }
        if (random.nextBoolean()) { // our ids, so the serializers see the random bodies
            frame[0] = (byte) (ControlCodec.FIRST_ID + 2 + random.nextInt(ControlCodec.LAST_ID - ControlCodec.FIRST_ID + 1));
        }
        return frame;
    }

    /** Bit flips, a truncation, a huge varint spliced in, or the id swapped for another. */
    static byte[] mutate(byte[] valid, SplittableRandom random) {
        byte[] frame = valid.clone();
        switch (random.nextInt(4)) {
            case 0 -> {
                for (int flips = 1 + random.nextInt(3); flips > 0; flips--) {
                    frame[random.nextInt(frame.length)] ^= (byte) (1 << random.nextInt(8));
                }
            }
            case 1 -> frame = java.util.Arrays.copyOf(frame, 1 + random.nextInt(frame.length));
            case 2 -> {
                int at = 1 + random.nextInt(Math.max(1, frame.length - 1));
                byte[] huge = {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) (random.nextBoolean() ? 0x07 : 0x0F)};
                byte[] spliced = java.util.Arrays.copyOf(frame, Math.max(frame.length, at + huge.length));
                System.arraycopy(huge, 0, spliced, Math.min(at, spliced.length - huge.length), huge.length);
                frame = spliced;
            }
            default -> frame[0] = (byte) random.nextInt(256);
        }
        return frame;
    }
}
