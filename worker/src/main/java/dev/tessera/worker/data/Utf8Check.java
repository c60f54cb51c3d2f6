package dev.tessera.worker.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** How much of a file's start is not valid UTF-8: a cheap test of whether "text" data is text. */
final class Utf8Check {

    /** {@code invalid} of the {@code bytes} read were not part of a valid UTF-8 sequence. */
    record Sample(long bytes, long invalid) {
        double invalidShare() {
            return bytes == 0 ? 0 : (double) invalid / bytes;
        }
    }

    private Utf8Check() {
    }

    /** Reads up to {@code maxBytes} from the start of {@code file}. */
    static Sample sample(Path file, int maxBytes) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            int length = (int) Math.min(ch.size(), maxBytes);
            ByteBuffer bytes = ByteBuffer.allocate(length);
            while (bytes.hasRemaining() && ch.read(bytes) >= 0) {
                // read until full or end of file
            }
            bytes.flip();
            boolean wholeFile = ch.size() <= maxBytes;
            return new Sample(bytes.remaining(), invalidBytes(bytes, wholeFile));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /**
     * Bytes of {@code bytes} that are not in a valid UTF-8 sequence. When the sample ends inside the file
     * ({@code endOfInput} false), a character cut by the sample's end is not counted against it.
     */
    static long invalidBytes(ByteBuffer bytes, boolean endOfInput) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        CharBuffer chars = CharBuffer.allocate(8192);
        long invalid = 0;
        while (true) {
            CoderResult r = decoder.decode(bytes, chars, endOfInput);
            if (r.isError()) {
                invalid += r.length();
                bytes.position(bytes.position() + r.length());
            } else if (r.isOverflow()) {
                chars.clear();
            } else {
                return invalid;
            }
        }
    }
}
