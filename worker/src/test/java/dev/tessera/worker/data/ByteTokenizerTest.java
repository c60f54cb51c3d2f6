package dev.tessera.worker.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ByteTokenizerTest {

    private final ByteTokenizer tok = new ByteTokenizer();

    @Test
    void roundTripsUtf8() {
        String text = "héllo, wörld — 日本語 🚀";
        int[] tokens = tok.encode(text);
        for (int t : tokens) {
            assertEquals(t, t & 0xFF);
        }
        assertEquals(text, tok.decode(tokens));
        assertEquals(256, tok.vocabSize());
    }

    @Test
    void encodesBytesAsUnsigned() {
        assertArrayEquals(new int[] {0x41, 0xC3, 0xA9}, tok.encode("Aé"));
    }

    @Test
    void rejectsOutOfRangeTokens() {
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {65, 256}));
    }
}
