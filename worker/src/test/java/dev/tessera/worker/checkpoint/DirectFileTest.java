package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files written and read through aligned chunks hold exactly the bytes given, whatever their sizes. */
class DirectFileTest {

    @TempDir
    Path dir;

    /** Parts that straddle chunk boundaries, an empty one, a heap one, and a tail that is not a whole block. */
    private static List<ByteBuffer> parts(Random random) {
        List<ByteBuffer> parts = new ArrayList<>();
        for (int size : new int[] {13, DirectFile.CHUNK - 5, 0, 3 * DirectFile.CHUNK / 2 + 7, 4099}) {
            byte[] bytes = new byte[size];
            random.nextBytes(bytes);
            ByteBuffer b = parts.size() % 2 == 0 ? ByteBuffer.allocateDirect(size) : ByteBuffer.allocate(size);
            parts.add(b.put(bytes).flip());
        }
        return parts;
    }

    private static byte[] concat(List<ByteBuffer> parts) {
        ByteBuffer all = ByteBuffer.allocate(parts.stream().mapToInt(ByteBuffer::remaining).sum());
        parts.forEach(p -> all.put(p.duplicate()));
        return all.array();
    }

    private static byte[] readBack(Path file) throws IOException {
        ByteBuffer all = ByteBuffer.allocate(Math.toIntExact(Files.size(file)));
        List<Long> offsets = new ArrayList<>();
        DirectFile.read(file, (offset, chunk) -> {
            offsets.add(offset);
            assertEquals(all.position(), offset, "chunks come in file order, without gaps");
            all.put(chunk);
        });
        assertEquals(offsets.size(), (Files.size(file) + DirectFile.CHUNK - 1) / DirectFile.CHUNK);
        return all.array();
    }

    private void roundTrip(Path folder) throws IOException {
        List<ByteBuffer> parts = parts(new Random(7));
        byte[] expected = concat(parts);
        Path file = folder.resolve("f.bin");
        Files.write(file, new byte[5 * DirectFile.CHUNK]); // a longer file is replaced, not overwritten in part
        assertEquals(expected.length, DirectFile.write(file, parts));
        assertEquals(expected.length, Files.size(file));
        assertArrayEquals(expected, Files.readAllBytes(file));
        assertArrayEquals(expected, readBack(file));
        for (ByteBuffer p : parts) {
            assertEquals(0, p.position(), "the parts are only read");
        }
    }

    @Test
    void writesAndReadsEveryByteAcrossChunkBoundaries() throws IOException {
        roundTrip(dir);
    }

    @Test
    void aFileSystemWithoutDirectIoGoesThroughThePageCache() throws IOException {
        Path shm = Path.of("/dev/shm");
        if (!Files.isDirectory(shm)) {
            return; // no tmpfs here: nothing refuses O_DIRECT to fall back from
        }
        Path folder = Files.createTempDirectory(shm, "tessera-directfile-test-");
        try {
            roundTrip(folder);
        } finally {
            try (var files = Files.list(folder)) {
                for (Path p : files.toList()) {
                    Files.delete(p);
                }
            }
            Files.delete(folder);
        }
    }

    @Test
    void anEmptyFileAndAFileOfWholeChunks() throws IOException {
        Path empty = dir.resolve("empty.bin");
        assertEquals(0, DirectFile.write(empty, List.of()));
        assertEquals(0, Files.size(empty));
        assertEquals(0, readBack(empty).length);

        byte[] bytes = new byte[2 * DirectFile.CHUNK];
        new Random(3).nextBytes(bytes);
        Path whole = dir.resolve("whole.bin");
        DirectFile.write(whole, List.of(ByteBuffer.wrap(bytes)));
        assertArrayEquals(bytes, readBack(whole));
    }

    @Test
    void aFailingConsumerStopsTheReadAndTheNextReadWorks() throws IOException {
        byte[] bytes = new byte[3 * DirectFile.CHUNK + 1];
        new Random(4).nextBytes(bytes);
        Path file = dir.resolve("f.bin");
        DirectFile.write(file, List.of(ByteBuffer.wrap(bytes)));
        IOException e = assertThrows(IOException.class, () -> DirectFile.read(file, (offset, chunk) -> {
            throw new IOException("consumer gave up at " + offset);
        }));
        assertEquals("consumer gave up at 0", e.getMessage());
        assertArrayEquals(bytes, readBack(file));
    }

    @Test
    void aFileThatShrinksWhileReadIsRefused() throws IOException {
        byte[] bytes = new byte[8 * DirectFile.CHUNK]; // more chunks than can be read ahead of the first
        Path file = dir.resolve("f.bin");
        DirectFile.write(file, List.of(ByteBuffer.wrap(bytes)));
        IOException e = assertThrows(IOException.class, () -> DirectFile.read(file, (offset, chunk) -> {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.truncate(DirectFile.CHUNK / 2);
            }
        }));
        assertTrue(e.getMessage().contains("truncated while open"), e.getMessage());
    }
}
