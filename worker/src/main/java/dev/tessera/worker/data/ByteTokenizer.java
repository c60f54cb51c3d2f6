package dev.tessera.worker.data;

import java.nio.charset.StandardCharsets;

/**
 * The identity tokenizer over UTF-8 bytes: token {@code t} is byte value {@code t} (0..255). It needs no
 * vocabulary file, so any text trains out of the box, and it matches {@link TextDataset}'s token stream.
 */
public final class ByteTokenizer {

    public static final int VOCAB_SIZE = 256;

    public int vocabSize() {
        return VOCAB_SIZE;
    }

    public int[] encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] tokens = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            tokens[i] = bytes[i] & 0xFF;
        }
        return tokens;
    }

    /**
     * Decodes tokens as UTF-8. A model may emit byte sequences that are not valid UTF-8; those become
     * U+FFFD rather than an exception, because sampling output is for reading, not round-tripping.
     */
    public String decode(int[] tokens) {
        byte[] bytes = new byte[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            int t = tokens[i];
            if (t < 0 || t >= VOCAB_SIZE) {
                throw new IllegalArgumentException("token " + t + " at position " + i + " is outside 0.." + (VOCAB_SIZE - 1));
            }
            bytes[i] = (byte) t;
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
