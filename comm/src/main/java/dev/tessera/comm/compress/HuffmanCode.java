package dev.tessera.comm.compress;

/**
 * A canonical Huffman code over FedZip's four symbols (0 = pruned, 1..3 = clusters). Only the code lengths cross
 * the wire; both sides rebuild the same codes from them (shorter codes first, lower symbols first among equals).
 * A symbol of count zero gets no code; a lone symbol gets a 1-bit code, so every symbol costs at least one bit.
 */
final class HuffmanCode {

    static final int SYMBOLS = 4;
    /** Four leaves make a tree at most three deep. */
    static final int MAX_LENGTH = SYMBOLS - 1;

    private final int[] lengths = new int[SYMBOLS];
    private final int[] codes = new int[SYMBOLS];
    private final int[] countOfLength = new int[MAX_LENGTH + 1];
    private final int[] firstCode = new int[MAX_LENGTH + 1];
    private final int[] firstRank = new int[MAX_LENGTH + 1];
    private final int[] symbolOfRank = new int[SYMBOLS];
    // Scratch for the tree: four leaves, then at most three inner nodes.
    private final long[] weight = new long[2 * SYMBOLS - 1];
    private final int[] parent = new int[2 * SYMBOLS - 1];
    private final boolean[] merged = new boolean[2 * SYMBOLS - 1];

    /** Builds the optimal code for these symbol counts (at least one of them positive). */
    void build(long[] counts) {
        int nodes = 0;
        int live = 0;
        for (int s = 0; s < SYMBOLS; s++) {
            weight[nodes] = counts[s];
            parent[nodes] = -1;
            merged[nodes] = counts[s] == 0; // absent symbols never join the tree
            live += counts[s] > 0 ? 1 : 0;
            nodes++;
        }
        for (; live > 1; live--) {
            int a = lightestLive(nodes);
            merged[a] = true;
            int b = lightestLive(nodes);
            merged[b] = true;
            weight[nodes] = weight[a] + weight[b];
            parent[nodes] = -1;
            merged[nodes] = false;
            parent[a] = nodes;
            parent[b] = nodes;
            nodes++;
        }
        for (int s = 0; s < SYMBOLS; s++) {
            int depth = 0;
            for (int node = parent[s]; node >= 0; node = parent[node]) {
                depth++;
            }
            lengths[s] = counts[s] == 0 ? 0 : Math.max(1, depth);
        }
        assignCodes();
    }

    /**
     * Adopts code lengths read from the wire for an alphabet of {@code symbols} symbols; fails with
     * {@link IllegalArgumentException} unless they are a prefix code that codes at least one of them.
     */
    void useLengths(int[] wireLengths, int symbols) {
        int kraft = 0; // in units of 2^-MAX_LENGTH
        for (int s = 0; s < SYMBOLS; s++) {
            int length = wireLengths[s];
            if (length < 0 || length > MAX_LENGTH || (s >= symbols && length != 0)) {
                throw new IllegalArgumentException("Huffman code length " + length + " for symbol " + s + " of "
                        + symbols);
            }
            kraft += length == 0 ? 0 : 1 << (MAX_LENGTH - length);
            lengths[s] = length;
        }
        if (kraft == 0 || kraft > 1 << MAX_LENGTH) {
            throw new IllegalArgumentException("Huffman code lengths " + lengths[0] + "," + lengths[1] + ","
                    + lengths[2] + "," + lengths[3] + " are not a prefix code");
        }
        assignCodes();
    }

    int length(int symbol) {
        return lengths[symbol];
    }

    void write(BitWriter out, int symbol) {
        out.write(codes[symbol], lengths[symbol]);
    }

    /** Reads one symbol; a bit pattern that is no symbol's code is an {@link IllegalArgumentException}. */
    int read(BitReader in) {
        int code = 0;
        for (int length = 1; length <= MAX_LENGTH; length++) {
            code = (code << 1) | in.readBit();
            int rank = code - firstCode[length];
            if (rank >= 0 && rank < countOfLength[length]) {
                return symbolOfRank[firstRank[length] + rank];
            }
        }
        throw new IllegalArgumentException("no Huffman code starts with " + Integer.toBinaryString(code));
    }

    private int lightestLive(int nodes) {
        int best = -1;
        for (int node = 0; node < nodes; node++) {
            if (!merged[node] && (best < 0 || weight[node] < weight[best])) {
                best = node;
            }
        }
        return best;
    }

    /** Canonical codes: by length, then symbol, each code the previous plus one, shifted as lengths grow. */
    private void assignCodes() {
        int rank = 0;
        int code = 0;
        for (int length = 1; length <= MAX_LENGTH; length++) {
            code <<= 1;
            firstCode[length] = code;
            firstRank[length] = rank;
            countOfLength[length] = 0;
            for (int s = 0; s < SYMBOLS; s++) {
                if (lengths[s] == length) {
                    codes[s] = code++;
                    symbolOfRank[rank++] = s;
                    countOfLength[length]++;
                }
            }
        }
    }
}
