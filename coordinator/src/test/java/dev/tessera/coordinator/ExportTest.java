package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code tessera export} of real checkpoints: a single-process dense model, a ZeRO-3 run of two worker JVMs (one
 * model file per gathered unit) and an expert-parallel run (one model file per expert-parallel rank). Each export
 * is read back with a safetensors parser of this test's own: every tensor is the checkpoint's, byte for byte, under
 * DESIGN.md's Hugging Face name, listed once in the index, in a shard within the size limit.
 */
@Timeout(600)
class ExportTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Forces several shards on these models (the embedding alone is 256 x 32 x 4 = 32 KiB). */
    private static final long MAX_SHARD = 40_000;

    /** DESIGN.md's names (Llama / Mixtral). */
    private static final Pattern DESIGN_NAME = Pattern.compile("model\\.embed_tokens\\.weight|model\\.norm\\.weight"
            + "|lm_head\\.weight|model\\.layers\\.\\d+\\.(input_layernorm|post_attention_layernorm)\\.weight"
            + "|model\\.layers\\.\\d+\\.self_attn\\.[qkvo]_proj\\.weight"
            + "|model\\.layers\\.\\d+\\.mlp\\.(gate|up|down)_proj\\.weight"
            + "|model\\.layers\\.\\d+\\.block_sparse_moe\\.gate\\.weight"
            + "|model\\.layers\\.\\d+\\.block_sparse_moe\\.experts\\.\\d+\\.w[123]\\.weight");

    @TempDir
    Path tmp;

    @Test
    void exportsADenseSingleProcessCheckpointAsLlama() throws Exception {
        Path run = tmp.resolve("dense");
        train(ClusterTrainingTest.job(run, 1, 4, "--set", "model.moe_every=0"));
        Path out = tmp.resolve("hf-dense");
        String err = export(checkpointOf(run), out);
        assertEquals("", err, "a top-k (here: dense) model exports without warnings");
        JsonNode config = assertExportMatches(checkpointOf(run), out, Set.of(), MAX_SHARD);
        assertEquals("LlamaForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("llama", config.get("model_type").asText());
        assertEquals(64, config.get("intermediate_size").asInt());

        // Below the embedding's 32 KiB: the embedding and lm_head get a shard each, over the limit, as in Hugging Face.
        Path small = Files.createDirectories(tmp.resolve("hf-dense-small")); // an empty --out is taken
        export(checkpointOf(run), small, "20KB");
        assertExportMatches(checkpointOf(run), small, Set.of(), 20_000);
        JsonNode weightMap = JSON.readTree(small.resolve("model.safetensors.index.json").toFile()).get("weight_map");
        String embedding = weightMap.get("model.embed_tokens.weight").asText();
        assertEquals(1, values(weightMap).stream().filter(embedding::equals).count(), "the embedding is alone in its shard");
        assertTrue(Files.size(small.resolve(embedding)) > 20_000);
    }

    @Test
    void exportsAZero3CheckpointOfTwoWorkers() throws Exception {
        Path run = tmp.resolve("zero3");
        train(ClusterTrainingTest.job(run, 2, 4, "--set", "zero.stage=3", "--set", "model.moe_every=1"));
        Path checkpoint = checkpointOf(run);
        assertTrue(modelFiles(checkpoint).size() > 1, "ZeRO-3 writes the model unit by unit: " + modelFiles(checkpoint));
        Path out = tmp.resolve("hf-zero3");
        export(checkpoint, out);
        JsonNode config = assertExportMatches(checkpoint, out, Set.of(), MAX_SHARD);
        assertEquals("MixtralForCausalLM", config.get("architectures").get(0).asText());
        assertEquals(4, config.get("num_local_experts").asInt());
        assertEquals(2, config.get("num_experts_per_tok").asInt());
        assertEquals(32, config.get("intermediate_size").asInt(), "Mixtral's intermediate_size is the expert width");
    }

    @Test
    void exportsAnExpertParallelCheckpointAndARunFolder() throws Exception {
        Path run = tmp.resolve("ep2");
        train(ClusterTrainingTest.job(run, 2, 4, "--set", "mesh.ep=2", "--set", "model.moe_every=1"));
        Path checkpoint = checkpointOf(run);
        assertEquals(2, modelFiles(checkpoint).size(), "each expert-parallel rank writes its part");
        Path out = tmp.resolve("hf-ep2");
        export(run, out); // a run folder: its newest complete checkpoint
        JsonNode config = assertExportMatches(checkpoint, out, Set.of(), MAX_SHARD);
        assertEquals("mixtral", config.get("model_type").asText());
    }

    @Test
    void theDefaultShardSizeKeepsATinyModelInOneFileAndARouterWithoutHfEquivalentIsWarnedAbout() throws Exception {
        Path run = tmp.resolve("hyper");
        train(ClusterTrainingTest.job(run, 1, 4, "--set", "model.gate=hyper", "--set", "model.hyper_size=8"));
        Path out = tmp.resolve("hf-hyper");
        String err = export(checkpointOf(run), out, null);
        List<String> warnings = err.lines().toList();
        assertEquals(1, warnings.size(), err);
        assertTrue(warnings.get(0).startsWith("tessera: warning: model.gate=hyper has no Hugging Face equivalent"), err);
        JsonNode index = JSON.readTree(out.resolve("model.safetensors.index.json").toFile());
        assertEquals(Set.of("model-00001-of-00001.safetensors"), new HashSet<>(values(index.get("weight_map"))));
        assertTrue(index.get("weight_map").has("model.layers.1.mlp.hyper.embedding"),
                "the hypernetwork's embedding is exported (under the Qwen2-MoE name of the interleaved model)");
        assertExportMatches(checkpointOf(run), out, Set.of("hyper"), Long.MAX_VALUE);
    }

    @Test
    void refusesWhatItCannotExportWithExitTwoAndOneLine() throws Exception {
        Path run = tmp.resolve("small");
        train(ClusterTrainingTest.job(run, 1, 4, "--set", "model.moe_every=0"));
        String checkpoint = checkpointOf(run).toString();
        Path never = tmp.resolve("never");

        Path full = Files.createDirectories(tmp.resolve("full"));
        Files.writeString(full.resolve("notes.txt"), "mine");
        assertRefused("--out " + full + " is not empty", "--checkpoint", checkpoint, "--out", full.toString());
        assertEquals("mine", Files.readString(full.resolve("notes.txt")));
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        assertRefused("--out " + file + " is a file", "--checkpoint", checkpoint, "--out", file.toString());

        Path unfinished = Files.createDirectories(tmp.resolve("other/checkpoints/step-0000005"));
        Files.copy(checkpointOf(run).resolve("config.json"), unfinished.resolve("config.json"));
        assertRefused("manifest.json missing", "--checkpoint", unfinished.toString(), "--out", never.toString());
        Path notACheckpoint = Files.createDirectories(tmp.resolve("somewhere"));
        assertRefused("manifest.json", "--checkpoint", notACheckpoint.toString(), "--out", never.toString());

        Path corrupt = tmp.resolve("corrupt/checkpoints/step-0000004");
        copyTree(checkpointOf(run), corrupt);
        Path model = corrupt.resolve(modelFiles(corrupt).iterator().next());
        byte[] bytes = Files.readAllBytes(model);
        bytes[bytes.length - 1] ^= 1;
        Files.write(model, bytes);
        assertRefused(model.getFileName() + ": SHA-256 mismatch", "--checkpoint", corrupt.toString(), "--out", never.toString());

        assertRefused("--max-shard-size", "--checkpoint", checkpoint, "--out", never.toString(), "--max-shard-size", "5XB");
        assertRefused("--max-shard-size", "--checkpoint", checkpoint, "--out", never.toString(), "--max-shard-size", "0");
        assertFalse(Files.exists(never), "a refused export creates nothing");
        try (Stream<Path> siblings = Files.list(tmp)) {
            assertFalse(siblings.anyMatch(p -> p.getFileName().toString().contains(".tmp-")), "no staging folder left");
        }
    }

    /** {@code export args} fails with exit code 2 and one line on stderr that contains {@code expected}. */
    private static void assertRefused(String expected, String... args) {
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        List<String> all = new ArrayList<>(List.of("export"));
        all.addAll(List.of(args));
        int code = Main.run(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(stderr, true, StandardCharsets.UTF_8), all.toArray(String[]::new));
        String err = stderr.toString(StandardCharsets.UTF_8);
        assertEquals(2, code, err);
        assertEquals(1, err.lines().count(), err);
        assertTrue(err.startsWith("tessera: ") && err.contains(expected), err);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> walk = Files.walk(from)) {
            for (Path p : walk.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }

    /** Runs {@code args} (a {@code train} command) in this process; worker JVMs when the mesh has several ranks. */
    private static void train(List<String> args) {
        ClusterTrainingTest.Run result = ClusterTrainingTest.run(args);
        assertEquals(0, result.code(), result.err());
    }

    /** Exports with {@code --max-shard-size} {@link #MAX_SHARD}; returns stderr. */
    private static String export(Path checkpoint, Path out) {
        return export(checkpoint, out, Long.toString(MAX_SHARD));
    }

    /** Exports with {@code --max-shard-size maxShardSize}, or the default where it is null; returns stderr. */
    private static String export(Path checkpoint, Path out, String maxShardSize) {
        List<String> args = new ArrayList<>(List.of("export", "--checkpoint", checkpoint.toString(), "--out", out.toString()));
        if (maxShardSize != null) {
            args.addAll(List.of("--max-shard-size", maxShardSize));
        }
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        int code = Main.run(new PrintStream(stdout, true, StandardCharsets.UTF_8),
                new PrintStream(stderr, true, StandardCharsets.UTF_8), args.toArray(String[]::new));
        String err = stderr.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, err);
        assertTrue(stdout.toString(StandardCharsets.UTF_8).startsWith("exported step 4 of "), stdout.toString());
        return err;
    }

    private static Path checkpointOf(Path run) {
        return run.resolve("checkpoints/step-0000004");
    }

    private static Set<String> modelFiles(Path checkpoint) throws IOException {
        return new TreeSet<>(values(JSON.readTree(checkpoint.resolve("model.safetensors.index.json").toFile())
                .get("weight_map")));
    }

    /**
     * Checks export {@code out} against {@code checkpoint}, parsing both with {@link #parse}; names outside
     * DESIGN.md's are allowed when they contain one of {@code extraNameParts} or are Qwen2-MoE's. With a
     * {@code maxShard} this small model exceeds, there must be several shards, each within it unless it holds a
     * single larger tensor. Returns config.json.
     */
    private static JsonNode assertExportMatches(Path checkpoint, Path out, Set<String> extraNameParts, long maxShard)
            throws IOException {
        Map<String, Tensor> expected = new HashMap<>();
        for (String file : modelFiles(checkpoint)) {
            expected.putAll(parse(checkpoint.resolve(file)));
        }
        JsonNode index = JSON.readTree(out.resolve("model.safetensors.index.json").toFile());
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = index.get("weight_map").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            weightMap.put(e.getKey(), e.getValue().asText());
        }
        assertEquals(new TreeSet<>(expected.keySet()), new TreeSet<>(weightMap.keySet()),
                "the index lists exactly the checkpoint's tensors");

        Set<String> shardFiles = new TreeSet<>(weightMap.values());
        int n = shardFiles.size();
        if (maxShard <= MAX_SHARD) {
            assertTrue(n >= 3, "a " + maxShard + "-byte limit cuts this model into several shards: " + shardFiles);
        }
        Set<String> expectedFiles = new TreeSet<>(List.of("config.json", "model.safetensors.index.json",
                "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"));
        for (int k = 1; k <= n; k++) {
            expectedFiles.add(String.format("model-%05d-of-%05d.safetensors", k, n));
        }
        try (Stream<Path> list = Files.list(out)) {
            assertEquals(expectedFiles, new TreeSet<>(list.map(p -> p.getFileName().toString()).toList()));
        }
        try (Stream<Path> siblings = Files.list(out.getParent())) {
            assertFalse(siblings.anyMatch(p -> p.getFileName().toString().contains(".tmp-")), "no staging folder left");
        }

        long total = 0;
        Set<String> seen = new HashSet<>();
        for (String file : shardFiles) {
            Map<String, Tensor> shard = parse(out.resolve(file));
            long bytes = 0;
            for (Map.Entry<String, Tensor> e : shard.entrySet()) {
                String name = e.getKey();
                assertTrue(seen.add(name), name + " is in more than one shard");
                assertEquals(file, weightMap.get(name), "the index names the file that holds " + name);
                Tensor want = expected.get(name);
                assertEquals(want.dtype, e.getValue().dtype, name);
                assertArrayEquals(want.shape, e.getValue().shape, name);
                assertArrayEquals(want.bytes, e.getValue().bytes, name + " differs from the checkpoint's bytes");
                bytes += e.getValue().bytes.length;
                assertTrue(DESIGN_NAME.matcher(name).matches() || name.startsWith("model.layers.")
                        && (name.contains(".mlp.") || name.contains("_proj.bias"))
                        || extraNameParts.stream().anyMatch(name::contains), name + " is not a Hugging Face name");
            }
            assertTrue(bytes <= maxShard || shard.size() == 1, file + " holds " + bytes + " bytes");
            total += bytes;
        }
        assertEquals(expected.keySet(), seen);
        assertEquals(total, index.get("metadata").get("total_size").asLong());

        JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
        JsonNode source = JSON.readTree(checkpoint.resolve("config.json").toFile());
        for (String key : List.of("architectures", "model_type", "hidden_size", "intermediate_size",
                "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "rope_theta", "rms_norm_eps",
                "vocab_size", "max_position_embeddings", "torch_dtype", "tie_word_embeddings")) {
            assertNotNull(config.get(key), key);
            assertEquals(source.get(key), config.get(key), key);
        }
        assertEquals(256, config.get("vocab_size").asInt());
        assertEquals("float32", config.get("torch_dtype").asText());
        assertTrue(config.get("eos_token_id").isNull(), "the byte tokenizer has no EOS token");
        assertByteTokenizer(out);
        return config;
    }

    /** The tokenizer maps byte b to id b through GPT-2's byte-to-unicode table; no merges, no special tokens. */
    private static void assertByteTokenizer(Path out) throws IOException {
        JsonNode tokenizer = JSON.readTree(out.resolve("tokenizer.json").toFile());
        assertEquals("ByteLevel", tokenizer.get("pre_tokenizer").get("type").asText());
        assertFalse(tokenizer.get("pre_tokenizer").get("add_prefix_space").asBoolean());
        assertEquals("ByteLevel", tokenizer.get("decoder").get("type").asText());
        JsonNode model = tokenizer.get("model");
        assertEquals("BPE", model.get("type").asText());
        assertEquals(0, model.get("merges").size());
        JsonNode vocab = model.get("vocab");
        assertEquals(256, vocab.size());
        Set<Integer> ids = new TreeSet<>();
        vocab.elements().forEachRemaining(id -> ids.add(id.asInt()));
        assertEquals(256, ids.size());
        assertEquals(0, (int) ids.iterator().next());
        // GPT-2's table, as published: printable ASCII stands for itself, space is U+0120 (Ġ), newline U+010A (Ċ).
        assertEquals('A', vocab.get("A").asInt());
        assertEquals(' ', vocab.get("\u0120").asInt());
        assertEquals('\n', vocab.get("\u010A").asInt());
        assertEquals(0, vocab.get("\u0100").asInt());
        assertEquals(0xAD, vocab.get("\u0143").asInt(), "the soft hyphen, the last unprintable byte, is U+0143");
        assertEquals(0, tokenizer.get("added_tokens").size());
        assertEquals("PreTrainedTokenizerFast", JSON.readTree(out.resolve("tokenizer_config.json").toFile())
                .get("tokenizer_class").asText());
        assertEquals(0, JSON.readTree(out.resolve("special_tokens_map.json").toFile()).size());
    }

    private record Tensor(String dtype, long[] shape, byte[] bytes) {
    }

    /**
     * A safetensors file by the format's definition, independent of Tessera's reader: 8-byte little-endian
     * header length, JSON header, then the data section, which the tensors must tile exactly.
     */
    private static Map<String, Tensor> parse(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = JSON.readTree(new String(all, 8, (int) headerLength, StandardCharsets.UTF_8));
        int data = 8 + (int) headerLength;
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        List<long[]> ranges = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                assertEquals("pt", e.getValue().get("format").asText(), file + ": transformers wants format pt");
                continue;
            }
            JsonNode t = e.getValue();
            long[] shape = new long[t.get("shape").size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = t.get("shape").get(i).asLong();
            }
            long begin = t.get("data_offsets").get(0).asLong();
            long end = t.get("data_offsets").get(1).asLong();
            assertEquals(Arrays.stream(shape).reduce(1, (a, b) -> a * b) * 4, end - begin, e.getKey());
            ranges.add(new long[] {begin, end});
            tensors.put(e.getKey(), new Tensor(t.get("dtype").asText(), shape,
                    Arrays.copyOfRange(all, data + (int) begin, data + (int) end)));
        }
        ranges.sort((a, b) -> Long.compare(a[0], b[0]));
        long at = 0;
        for (long[] r : ranges) {
            assertEquals(at, r[0], file + ": the tensors tile the data section");
            at = r[1];
        }
        assertEquals(all.length - data, at, file + ": no bytes after the last tensor");
        return tensors;
    }

    private static List<String> values(JsonNode object) {
        List<String> out = new ArrayList<>();
        object.elements().forEachRemaining(v -> out.add(v.asText()));
        return out;
    }
}
