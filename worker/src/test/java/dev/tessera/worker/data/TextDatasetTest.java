package dev.tessera.worker.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.data.TokenSource.Split;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextDatasetTest {

    @TempDir
    Path dir;

    /** Random bytes, so a window of 16 bytes occurs only once and identifies its start. */
    private static byte[] pattern(int n, int salt) {
        byte[] b = new byte[n];
        new java.util.Random(salt).nextBytes(b);
        return b;
    }

    @Test
    void targetsAreInputsShiftedAndWindowsComeFromTheFile() throws IOException {
        byte[] data = pattern(1000, 7);
        Path file = Files.write(dir.resolve("a.txt"), data);
        TextDataset ds = new TextDataset(file, 0.1, 42);
        assertEquals(900, ds.length(Split.TRAIN));
        assertEquals(100, ds.length(Split.VALIDATION));
        int seq = 16;
        int count = 8;
        int[] in = new int[count * seq];
        int[] tg = new int[count * seq];
        ds.fill(Split.TRAIN, 3, 0, count, seq, in, tg);
        for (int j = 0; j < count; j++) {
            int start = findWindow(data, in, j * seq, seq);
            assertTrue(start >= 0 && start + seq + 1 <= 900, "training window inside the training split");
            for (int t = 0; t < seq; t++) {
                assertEquals(data[start + t + 1] & 0xFF, tg[j * seq + t]);
            }
        }
        ds.fill(Split.VALIDATION, 3, 0, count, seq, in, tg);
        for (int j = 0; j < count; j++) {
            int start = findWindow(data, in, j * seq, seq);
            assertTrue(start >= 900 && start + seq + 1 <= 1000, "validation window inside the validation split");
        }
    }

    private static int findWindow(byte[] data, int[] tokens, int from, int len) {
        for (int s = 0; s + len <= data.length; s++) {
            boolean ok = true;
            for (int t = 0; t < len && ok; t++) {
                ok = (data[s + t] & 0xFF) == tokens[from + t];
            }
            if (ok) {
                return s;
            }
        }
        return -1;
    }

    @Test
    void deterministicAndSliceInvariant() throws IOException {
        Path file = Files.write(dir.resolve("a.txt"), pattern(5000, 3));
        TextDataset ds = new TextDataset(file, 0.2, 9);
        int seq = 32;
        int[] inAll = new int[8 * seq];
        int[] tgAll = new int[8 * seq];
        ds.fill(Split.TRAIN, 11, 0, 8, seq, inAll, tgAll);
        int[] in = new int[4 * seq];
        int[] tg = new int[4 * seq];
        for (int part = 0; part < 2; part++) {
            ds.fill(Split.TRAIN, 11, part * 4, 4, seq, in, tg);
            assertArrayEquals(Arrays.copyOfRange(inAll, part * 4 * seq, (part + 1) * 4 * seq), in);
            assertArrayEquals(Arrays.copyOfRange(tgAll, part * 4 * seq, (part + 1) * 4 * seq), tg);
        }
        int[] again = new int[8 * seq];
        new TextDataset(file, 0.2, 9).fill(Split.TRAIN, 11, 0, 8, seq, again, new int[8 * seq]);
        assertArrayEquals(inAll, again);
        new TextDataset(file, 0.2, 10).fill(Split.TRAIN, 11, 0, 8, seq, again, new int[8 * seq]);
        assertFalse(Arrays.equals(inAll, again), "another seed gives other samples");
    }

    @Test
    void folderIsConcatenatedRecursivelyInPathOrderSkippingHiddenFiles() throws IOException {
        Files.createDirectories(dir.resolve("b/sub"));
        Files.writeString(dir.resolve("b/sub/2.txt"), "CD");
        Files.writeString(dir.resolve("a.txt"), "AB");
        Files.writeString(dir.resolve("c.txt"), "EF");
        Files.writeString(dir.resolve(".hidden"), "XX");
        TextDataset ds = new TextDataset(dir, 0.0, 1);
        assertEquals(6, ds.length(Split.TRAIN));
        int[] in = new int[5];
        int[] tg = new int[5];
        ds.fill(Split.TRAIN, 0, 0, 1, 5, in, tg);
        assertEquals("ABCDE", new ByteTokenizer().decode(in));
        assertEquals("BCDEF", new ByteTokenizer().decode(tg));
    }

    @Test
    void readsAcrossMapWindowsAndFiles() throws IOException {
        byte[] a = pattern(37, 1);
        byte[] b = pattern(50, 2);
        Path fa = Files.write(dir.resolve("a"), a);
        Path fb = Files.write(dir.resolve("b"), b);
        MappedBytes mb = new MappedBytes(List.of(fa, fb), 8);
        assertEquals(87, mb.length());
        byte[] all = new byte[87];
        System.arraycopy(a, 0, all, 0, 37);
        System.arraycopy(b, 0, all, 37, 50);
        for (int start = 0; start < 87; start += 5) {
            int n = Math.min(23, 87 - start);
            int[] got = new int[n];
            mb.read(start, n, got, 0);
            for (int i = 0; i < n; i++) {
                assertEquals(all[start + i] & 0xFF, got[i], "byte " + (start + i));
            }
        }
    }

    @Test
    void userErrorsNameThePath() throws IOException {
        Path missing = dir.resolve("nope.txt");
        assertMessage(() -> new TextDataset(missing, 0.1, 1), missing + " does not exist");
        Path emptyDir = Files.createDirectories(dir.resolve("empty"));
        assertMessage(() -> new TextDataset(emptyDir, 0.1, 1), emptyDir + " is a folder with no files");
        Path emptyFile = Files.write(dir.resolve("zero.txt"), new byte[0]);
        assertMessage(() -> new TextDataset(emptyFile, 0.1, 1), emptyFile + " is empty");
        Path small = Files.writeString(dir.resolve("small.txt"), "x".repeat(100));
        TextDataset ds = new TextDataset(small, 0.1, 1);
        assertMessage(() -> ds.fill(Split.VALIDATION, 0, 0, 1, 16, new int[16], new int[16]),
                "validation split has 10 bytes but seq_len 16 needs at least 17");
        assertMessage(() -> ds.fill(Split.TRAIN, 0, 0, 1, 128, new int[128], new int[128]),
                "training split has 90 bytes but seq_len 128 needs at least 129");
        assertMessage(() -> new TextDataset(small, 1.0, 1), "val_fraction is 1.0");
    }

    private static void assertMessage(Runnable r, String expected) {
        UserInputException e = assertThrows(UserInputException.class, r::run);
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
    }

    @Test
    void describeNamesSizes() throws IOException {
        Path file = Files.write(dir.resolve("a.txt"), "hello world".getBytes(StandardCharsets.UTF_8));
        String d = new TextDataset(file, 0.0, 1).describe();
        assertTrue(d.contains("11 bytes"), d);
    }

    @Test
    void binaryDataIsReportedInOneLineNamingTheFileAndItsShareOfInvalidBytes() throws IOException {
        Path text = Files.writeString(dir.resolve("a.txt"), "Grüße, 世界! plain UTF-8 text. ".repeat(200));
        Path binary = Files.write(dir.resolve("b.bin"), pattern(50_000, 3));
        assertEquals(List.of(), new TextDataset(text, 0.1, 1).warnings(), "UTF-8 text is not reported");

        List<String> warnings = new TextDataset(dir, 0.1, 1).warnings();
        assertEquals(1, warnings.size(), warnings.toString());
        String line = warnings.get(0);
        long invalid = Utf8Check.sample(binary, TextDataset.UTF8_SAMPLE_PER_FILE).invalid();
        String share = String.format(java.util.Locale.ROOT, "%.1f%%", 100.0 * invalid / 50_000);
        assertTrue(line.contains(binary.toString()) && line.contains(share + " invalid UTF-8"), line);
        assertFalse(line.contains("\n"));
    }

    @Test
    void invalidBytesAreCountedPerMalformedSequence() {
        byte[] bytes = "ok \u00e9 ok".getBytes(StandardCharsets.UTF_8);
        assertEquals(0, Utf8Check.invalidBytes(java.nio.ByteBuffer.wrap(bytes), true));
        byte[] broken = {'a', (byte) 0xff, 'b', (byte) 0xc3, 'c', (byte) 0xe4, (byte) 0xb8};
        // 0xff alone, 0xc3 without its continuation, and a 3-byte lead cut after 2 bytes at the end of input
        assertEquals(4, Utf8Check.invalidBytes(java.nio.ByteBuffer.wrap(broken), true));
        // The same cut character at the end of a sample that continues in the file is not held against it.
        assertEquals(2, Utf8Check.invalidBytes(java.nio.ByteBuffer.wrap(broken), false));
    }
}
