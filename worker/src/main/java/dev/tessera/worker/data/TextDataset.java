package dev.tessera.worker.data;

import dev.tessera.comm.UserInputException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.OptionalDouble;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * UTF-8 text as a byte-level token stream ({@link ByteTokenizer}). The path is one file or a folder whose
 * regular files (recursively, hidden ones skipped, sorted by path) are concatenated. The bytes are
 * memory-mapped, never copied to the heap.
 *
 * <p>The last {@code valFraction} of the bytes is the validation split, the rest is training. Sample
 * {@code i} of step {@code s} starts at {@code SplitMix64.hash(seed, split, s, i) mod (splitLength - seq)}
 * within its split, so batches are reproducible and independent of how they are sliced across ranks.
 */
public final class TextDataset implements TokenSource {

    /** Share of bytes that are not UTF-8 above which a file is reported as probably not text. */
    static final double MAX_INVALID_UTF8_SHARE = 0.01;
    /** Bytes read from the start of each file to judge its encoding, and at most in all. */
    static final int UTF8_SAMPLE_PER_FILE = 1 << 20;
    static final long UTF8_SAMPLE_TOTAL = 32L << 20;

    private final Path path;
    private final List<Path> files;
    private final int fileCount;
    private final MappedBytes bytes;
    private final long trainLength;
    private final long valLength;
    private final long seed;

    public TextDataset(Path path, double valFraction, long seed) {
        if (!(valFraction >= 0 && valFraction < 1)) {
            throw new UserInputException("val_fraction is " + valFraction + " but must be in [0, 1) (the share of "
                    + path + " held out for validation)");
        }
        this.path = path;
        this.seed = seed;
        this.files = listFiles(path);
        this.fileCount = files.size();
        this.bytes = new MappedBytes(files);
        long total = bytes.length();
        if (total == 0) {
            throw new UserInputException("data path " + path + " is empty (0 bytes in " + fileCount
                    + " file(s)); point it at UTF-8 text");
        }
        this.valLength = (long) Math.floor(total * valFraction);
        this.trainLength = total - valLength;
    }

    private static List<Path> listFiles(Path path) {
        if (!Files.exists(path)) {
            throw new UserInputException("data path " + path + " does not exist; give a UTF-8 text file or a folder of them");
        }
        if (Files.isRegularFile(path)) {
            return List.of(path);
        }
        try (Stream<Path> walk = Files.walk(path)) {
            List<Path> files = walk
                    .filter(p -> !isHidden(path, p))
                    .filter(Files::isRegularFile)
                    .sorted(Comparator.comparing(Path::toString))
                    .collect(Collectors.toList());
            if (files.isEmpty()) {
                throw new UserInputException("data path " + path + " is a folder with no files; put UTF-8 text files in it");
            }
            return files;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + path, e);
        }
    }

    /** Hidden files and folders (editor swap files, .git) are not training text. */
    private static boolean isHidden(Path root, Path p) {
        for (Path part : root.relativize(p)) {
            if (part.toString().startsWith(".")) {
                return true;
            }
        }
        return false;
    }

    @Override
    public int vocabSize() {
        return ByteTokenizer.VOCAB_SIZE;
    }

    public long length(Split split) {
        return split == Split.TRAIN ? trainLength : valLength;
    }

    /** Fails with a message saying how many bytes {@code split} would need for sequences of {@code seq}. */
    public void checkFits(Split split, int seq) {
        long have = length(split);
        if (have < seq + 1L) {
            String fix = split == Split.TRAIN ? "add data, lower seq_len or lower val_fraction"
                    : "raise val_fraction, add data or lower seq_len";
            throw new UserInputException("data path " + path + ": the " + name(split) + " split has " + have
                    + " bytes but seq_len " + seq + " needs at least " + (seq + 1L) + " (" + fix + ")");
        }
    }

    @Override
    public void fill(Split split, long step, int firstSample, int count, int seq, int[] inputs, int[] targets) {
        if (seq <= 0) {
            throw new IllegalArgumentException("seq must be positive: " + seq);
        }
        checkFits(split, seq);
        long splitStart = split == Split.TRAIN ? 0 : trainLength;
        long starts = length(split) - seq;
        int[] window = new int[seq + 1];
        for (int j = 0; j < count; j++) {
            long h = SplitMix64.hash(seed, split.ordinal(), step, firstSample + j);
            long offset = Long.remainderUnsigned(h, starts);
            bytes.read(splitStart + offset, seq + 1, window, 0);
            System.arraycopy(window, 0, inputs, j * seq, seq);
            System.arraycopy(window, 1, targets, j * seq, seq);
        }
    }

    /**
     * Warns, in one line, when a file's first {@link #UTF8_SAMPLE_PER_FILE} bytes are more than
     * {@link #MAX_INVALID_UTF8_SHARE} invalid UTF-8: byte tokens train on anything, so a binary file given as text
     * would otherwise train without a word. Names the worst file and how many others are alike.
     */
    @Override
    public List<String> warnings() {
        Path worst = null;
        double worstShare = 0;
        long sampled = 0;
        int suspicious = 0;
        for (Path file : files) {
            if (sampled >= UTF8_SAMPLE_TOTAL) {
                break;
            }
            Utf8Check.Sample sample = Utf8Check.sample(file, UTF8_SAMPLE_PER_FILE);
            sampled += sample.bytes();
            if (sample.invalidShare() > MAX_INVALID_UTF8_SHARE) {
                suspicious++;
                if (sample.invalidShare() > worstShare) {
                    worst = file;
                    worstShare = sample.invalidShare();
                }
            }
        }
        if (worst == null) {
            return List.of();
        }
        String others = suspicious > 1 ? " (and " + (suspicious - 1) + " more file(s) like it)" : "";
        return List.of(String.format(Locale.ROOT, "warning: data file %s is %.1f%% invalid UTF-8%s; "
                + "it trains as bytes, but is it text? (data.path should hold UTF-8 text)", worst, 100 * worstShare,
                others));
    }

    @Override
    public OptionalDouble entropyFloor() {
        return OptionalDouble.empty();
    }

    @Override
    public String describe() {
        return String.format("text %s: %d file(s), %d bytes (train %d, validation %d), byte tokens (vocab 256)",
                path, fileCount, trainLength + valLength, trainLength, valLength);
    }

    private static String name(Split split) {
        return split == Split.TRAIN ? "training" : "validation";
    }
}
