package dev.tessera.comm;

import dev.tessera.comm.control.Abort;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.Hello;
import dev.tessera.comm.control.TextMessage;
import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Two communicators in this JVM on one driver: intruder frames, control messages, driver directories. */
class InProcessCommTest {

    static final String JOB = "inproc" + ProcessHandle.current().pid();
    private InProcessComms pair;
    private Communicator[] comms;
    private MediaDriverHost driver;

    @BeforeEach
    void connectPair() throws Exception {
        pair = InProcessComms.connect(JOB, 2, 58000 + (int) (ProcessHandle.current().pid() % 1000) * 2);
        comms = new Communicator[] {pair.get(0), pair.get(1)};
        driver = pair.driver();
    }

    @AfterEach
    void close() {
        pair.close();
        assertFalse(Files.exists(pair.directory()));
    }

    @Test
    void framesFromUnknownSessionsAreDroppedAndCounted() throws Exception {
        try (Aeron intruder = Aeron.connect(new Aeron.Context().aeronDirectoryName(driver.aeronDirectoryName()))) {
            ExclusivePublication pub = intruder.addExclusivePublication("aeron:ipc", Communicator.DATA_STREAM_BASE);
            UnsafeBuffer frame = new UnsafeBuffer(new byte[DataFrame.HEADER_LENGTH + 64]);
            // A well-formed frame claiming to be rank 1, for the world group's first all-reduce.
            DataFrame.writeHeader(frame, 0, comms[0].world().id(), DataFrame.KIND_COLLECTIVE, 0, 1, 0, 64, 0);
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            int sent = 0;
            while (sent < 5 && System.nanoTime() < until) {
                if (pub.offer(frame) > 0) {
                    sent++;
                }
            }
            assertEquals(5, sent);
            CompletableFuture<UnsafeBuffer> other = CompletableFuture.supplyAsync(() -> allReduceOnes(comms[1], 16));
            UnsafeBuffer mine = allReduceOnes(comms[0], 16);
            UnsafeBuffer theirs = other.get(20, TimeUnit.SECONDS);
            for (int i = 0; i < 16; i++) {
                assertEquals(2.0f, mine.getFloat(i * 4));
                assertEquals(2.0f, theirs.getFloat(i * 4));
            }
            while (comms[0].droppedFrames() < 5 && System.nanoTime() < until) {
                comms[0].pollControlMessage();
            }
            assertEquals(5, comms[0].droppedFrames());
        }
    }

    /**
     * The campaign's frames, valid messages and Hellos with a wrong token from a session that never said Hello,
     * and random bytes: all dropped or rejected and counted, none reaches the inbox or aborts a group, and the
     * pair still talks afterwards.
     */
    @Test
    void hostileControlFramesAreDroppedAndCountedWithoutHarm() throws Exception {
        ControlCodec codec = new ControlCodec();
        UnsafeBuffer frame = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
        java.util.SplittableRandom random = new java.util.SplittableRandom(7);
        long sent = 0;
        long wrongTokens = 0;
        try (Aeron intruder = Aeron.connect(new Aeron.Context().aeronDirectoryName(driver.aeronDirectoryName()))) {
            ExclusivePublication pub = intruder.addExclusivePublication("aeron:ipc", Communicator.controlStreamId(0));
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!pub.isConnected() && System.nanoTime() < until) {
                Thread.onSpinWait();
            }
            for (int i = 0; i < 2_000; i++) {
                int length;
                switch (i % 6) {
                    case 0 -> {
                        byte[] b = java.util.HexFormat.of().parseHex(i % 12 == 0 ? "03ffffffff07" : "0f");
                        frame.putBytes(0, b);
                        length = b.length;
                    }
                    case 1 -> length = codec.encode(new Abort(comms[0].world().id(), 1, "forged"), frame, 0);
                    case 2 -> length = codec.encode(new TextMessage("forged"), frame, 0);
                    case 3 -> {
                        length = codec.encode(new Hello(JOB, 1, new byte[32], pub.sessionId(), pub.sessionId()), frame, 0);
                        wrongTokens++;
                    }
                    case 4 -> { // a Hello with its digest length claiming 2^31 bytes
                        length = codec.encode(new Hello(JOB, 1, new byte[32], 1, 2), frame, 0);
                        frame.putBytes(2 + JOB.length() + 4, new byte[] {-1, -1, -1, -1, 7});
                    }
                    default -> {
                        length = 1 + random.nextInt(200);
                        for (int b = 0; b < length; b++) {
                            frame.putByte(b, (byte) random.nextInt(256));
                        }
                    }
                }
                while (pub.offer(frame, 0, length) < 0) {
                    assertTrue(System.nanoTime() < until, "the intruder's frames were not taken");
                    comms[0].pollControlMessage();
                }
                sent++;
            }
            while (comms[0].droppedControlFrames() + comms[0].rejectedHandshakes() < sent && System.nanoTime() < until) {
                assertEquals(null, comms[0].pollControlMessage(), "an intruder's frame reached the inbox");
            }
            assertEquals(sent, comms[0].droppedControlFrames() + comms[0].rejectedHandshakes());
            assertEquals(wrongTokens, comms[0].rejectedHandshakes());
            assertEquals(null, comms[0].abortReason(comms[0].world().id()));
        }
        controlMessagesTravelWithKryo();
        CompletableFuture<UnsafeBuffer> other = CompletableFuture.supplyAsync(() -> allReduceOnes(comms[1], 16));
        assertEquals(2.0f, allReduceOnes(comms[0], 16).getFloat(0));
        assertEquals(2.0f, other.get(20, TimeUnit.SECONDS).getFloat(0));
    }

    private static UnsafeBuffer allReduceOnes(Communicator comm, int count) {
        UnsafeBuffer b = new UnsafeBuffer(ByteBuffer.allocateDirect(count * 4));
        for (int i = 0; i < count; i++) {
            b.putFloat(i * 4, 1.0f);
        }
        comm.world().allReduce(b, DType.FLOAT32, ReduceOp.SUM);
        return b;
    }

    @Test
    void controlMessagesTravelWithKryo() {
        comms[0].sendControl(1, new TextMessage("assign shard 3"));
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        ControlMessage got = null;
        while (got == null && System.nanoTime() < until) {
            got = comms[1].pollControlMessage();
        }
        assertInstanceOf(TextMessage.class, got);
        assertEquals("assign shard 3", ((TextMessage) got).text);
    }

    @Test
    void mismatchedSizesFailWithTheOperationAndPeerNamed() throws Exception {
        CompletableFuture<Void> other = CompletableFuture.runAsync(
                () -> comms[1].world().send(new UnsafeBuffer(ByteBuffer.allocateDirect(64)), 0));
        CommException e = assertThrows(CommException.class,
                () -> comms[0].world().recv(new UnsafeBuffer(ByteBuffer.allocateDirect(32)), 1));
        assertTrue(e.getMessage().contains("recv on group 'world'") && e.getMessage().contains("rank 1"),
                e.getMessage());
        other.get(20, TimeUnit.SECONDS);
    }

    @Test
    void staleDriverDirectoryIsDetectedAndCleaned() throws Exception {
        Path stale = Path.of(MediaDriverHost.directoryFor(JOB + "-stale", "host"));
        Files.createDirectories(stale);
        Process dead = new ProcessBuilder("true").start();
        dead.waitFor();
        Files.writeString(stale.resolve(ProcessOwner.FILE), Long.toString(dead.pid()));
        Files.writeString(stale.resolve("cnc.dat"), "left by a crashed run");
        assertTrue(MediaDriverHost.isStale(stale));
        try (MediaDriverHost fresh = MediaDriverHost.launch(stale.toString(), CommConfig.MAX_MTU, 1 << 20)) {
            assertEquals(ProcessHandle.current().pid(), ProcessOwner.readFrom(stale).orElseThrow().pid());
            // A directory whose owner is alive is a running job, not something to delete.
            UserInputException busy = assertThrows(UserInputException.class,
                    () -> MediaDriverHost.launch(stale.toString(), CommConfig.MAX_MTU, 1 << 20));
            assertTrue(busy.getMessage().contains("already running"), busy.getMessage());
        }
        assertFalse(Files.exists(stale));
    }

    @Test
    void kryoRejectsUnregisteredClasses() {
        ControlCodec codec = new ControlCodec();
        UnsafeBuffer buffer = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
        int length = codec.encode(new Hello("job", 3, new byte[] {1, 2}, 7, 8), buffer, 0);
        Hello back = (Hello) codec.decode(buffer, 0, length);
        assertEquals(3, back.rank);
        assertArrayEquals(new byte[] {1, 2}, back.tokenDigest);
        buffer.putByte(0, (byte) 99); // an unregistered class id
        assertThrows(IllegalArgumentException.class, () -> codec.decode(buffer, 0, length));
        assertThrows(IllegalArgumentException.class, () -> codec.decode(buffer, 0, ControlCodec.MAX_MESSAGE_BYTES + 1));
        assertThrows(IllegalArgumentException.class, () -> codec.encode(new Unregistered(), buffer, 0));
    }

    @Test
    void hugeLengthPrefixIsRefusedBeforeAllocating() {
        ControlCodec codec = new ControlCodec();
        UnsafeBuffer buffer = new UnsafeBuffer(new byte[64]);
        int length = codec.encode(new TextMessage("abc"), buffer, 0);
        // The frame is: class id, length + 1 as a varint, the UTF-8 bytes. Claim 2^28 bytes instead.
        assertEquals(5, length);
        assertEquals(4, buffer.getByte(1));
        buffer.putByte(1, (byte) 0x80);
        buffer.putByte(2, (byte) 0x80);
        buffer.putByte(3, (byte) 0x80);
        buffer.putByte(4, (byte) 0x80);
        buffer.putByte(5, (byte) 0x01);
        final int end = 6;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> codec.decode(buffer, 0, end));
        assertTrue(e.getMessage().contains("length"), e.getMessage());
    }

    static final class Unregistered implements ControlMessage {
    }
}
