package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.comm.UserInputException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.concurrent.Future;
import java.security.NoSuchAlgorithmException;
import java.util.Collections;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * {@code manifest.json}: the size and SHA-256 of every other file of a checkpoint. It is written last,
 * so its presence and a successful {@link #verify} are what make a checkpoint exist.
 */
final class Manifest {

    static final String FORMAT = "tessera-checkpoint";
    static final int VERSION = 1;

    record FileEntry(long size, String sha256) {
    }

    private final long step;
    /** Relative, '/'-separated paths, sorted. */
    private final Map<String, FileEntry> files;

    private Manifest(long step, Map<String, FileEntry> files) {
        this.step = step;
        this.files = Collections.unmodifiableMap(new TreeMap<>(files));
    }

    long step() {
        return step;
    }

    Map<String, FileEntry> files() {
        return files;
    }

    /**
     * Hashes every regular file under {@code dir} except the manifest itself, taking the hashes {@link FileDigests}
     * started as the files were written and hashing the others in parallel.
     */
    static Manifest compute(Path dir, long step) {
        try (Stream<Path> walk = Files.walk(dir)) {
            Map<String, Future<String>> digests = new TreeMap<>();
            for (Path p : walk.filter(Files::isRegularFile).collect(Collectors.toList())) {
                String rel = relative(dir, p);
                if (!rel.equals(CheckpointLayout.MANIFEST)) {
                    digests.put(rel, FileDigests.of(p));
                }
            }
            Map<String, FileEntry> files = new TreeMap<>();
            for (Map.Entry<String, Future<String>> d : digests.entrySet()) {
                files.put(d.getKey(), new FileEntry(Files.size(dir.resolve(d.getKey())), FileDigests.get(d.getValue())));
            }
            return new Manifest(step, files);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot hash the files of " + dir, e);
        }
    }

    byte[] toJson() {
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", VERSION);
        root.put("step", step);
        ObjectNode list = root.putObject("files");
        files.forEach((name, e) -> list.putObject(name).put("size", e.size()).put("sha256", e.sha256()));
        try {
            return Json.MAPPER.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Reads {@code dir}'s manifest; a missing or malformed one means the checkpoint is incomplete. */
    static Manifest read(Path dir) {
        Path file = dir.resolve(CheckpointLayout.MANIFEST);
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            throw problem(dir, "is incomplete: " + CheckpointLayout.MANIFEST + " missing (an interrupted write?)");
        } catch (IOException e) {
            throw problem(dir, "is corrupt: " + CheckpointLayout.MANIFEST + " is not valid JSON");
        }
        if (root == null || !FORMAT.equals(root.path("format").asText()) || !root.path("step").canConvertToLong()
                || !root.path("files").isObject()) {
            throw problem(dir, "is corrupt: " + CheckpointLayout.MANIFEST + " is not a " + FORMAT + " manifest");
        }
        if (root.path("version").asInt(-1) != VERSION) {
            throw problem(dir, "has manifest version " + root.path("version") + "; this Tessera reads version " + VERSION);
        }
        Map<String, FileEntry> files = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.get("files").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode e = f.getValue();
            if (!isSafeRelative(name) || !e.path("size").canConvertToLong() || !e.path("sha256").isTextual()) {
                throw problem(dir, "is corrupt: " + CheckpointLayout.MANIFEST + " has an invalid entry " + name);
            }
            files.put(name, new FileEntry(e.get("size").asLong(), e.get("sha256").asText()));
        }
        return new Manifest(root.get("step").asLong(), files);
    }

    /** Checks every listed file: present, of the listed size, with the listed SHA-256 (hashed in parallel). */
    void verify(Path dir) {
        verifySizes(dir);
        Map<String, Future<String>> digests = new TreeMap<>();
        for (String name : files.keySet()) {
            digests.put(name, FileDigests.of(dir.resolve(name)));
        }
        for (Map.Entry<String, Future<String>> d : digests.entrySet()) {
            try {
                checkHash(dir, d.getKey(), FileDigests.get(d.getValue()));
            } catch (IOException e) {
                throw problem(dir, "is unreadable: " + d.getKey() + ": " + e.getMessage());
            }
        }
    }

    /** Checks that every listed file is present with the listed size (no byte is read). */
    void verifySizes(Path dir) {
        for (Map.Entry<String, FileEntry> f : files.entrySet()) {
            Path p = dir.resolve(f.getKey());
            if (!Files.isRegularFile(p)) {
                throw problem(dir, "is incomplete: " + f.getKey() + " missing");
            }
            try {
                long size = Files.size(p);
                if (size != f.getValue().size()) {
                    throw problem(dir, "is corrupt: " + f.getKey() + " has " + size + " bytes but the manifest says "
                            + f.getValue().size() + " (truncated or overwritten file)");
                }
            } catch (IOException e) {
                throw problem(dir, "is unreadable: " + f.getKey() + ": " + e.getMessage());
            }
        }
    }

    /** Reads listed file {@code name} and checks its SHA-256. */
    void verifyHash(Path dir, String name) {
        try {
            checkHash(dir, name, sha256(dir.resolve(name)));
        } catch (IOException e) {
            throw problem(dir, "is unreadable: " + name + ": " + e.getMessage());
        }
    }

    /** Compares listed file {@code name}'s SHA-256, computed by whoever read it, with the listed one. */
    void checkHash(Path dir, String name, String sha256) {
        if (!sha256.equalsIgnoreCase(files.get(name).sha256())) {
            throw problem(dir, "is corrupt: " + name + ": SHA-256 mismatch (file corrupted)");
        }
    }

    static UserInputException problem(Path dir, String what) {
        return new UserInputException("checkpoint " + dir + " " + what);
    }

    static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    /** The file's SHA-256, read at disk speed ({@link DirectFile}). */
    static String sha256(Path file) throws IOException {
        MessageDigest md = newSha256();
        DirectFile.read(file, (offset, chunk) -> md.update(chunk));
        return HexFormat.of().formatHex(md.digest());
    }

    private static String relative(Path dir, Path p) {
        StringBuilder sb = new StringBuilder();
        for (Path part : dir.relativize(p)) {
            if (sb.length() > 0) {
                sb.append('/');
            }
            sb.append(part);
        }
        return sb.toString();
    }

    /** A manifest must not point outside its checkpoint (absolute paths, "..", backslashes). */
    private static boolean isSafeRelative(String name) {
        if (name.isEmpty() || name.startsWith("/") || name.contains("\\") || name.contains(":")) {
            return false;
        }
        for (String part : name.split("/", -1)) {
            if (part.isEmpty() || part.equals(".") || part.equals("..")) {
                return false;
            }
        }
        return true;
    }
}
