package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.worker.data.ByteTokenizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Hugging Face tokenizer files of Tessera's {@link ByteTokenizer}: token {@code b} is UTF-8 byte {@code b}, 256
 * tokens, no merges, no special tokens (no BOS, EOS, PAD or UNK: training sees the raw bytes of the text and
 * nothing else, and every byte has a token). It is written as a {@code tokenizers} byte-level BPE with an empty
 * merge list: the ByteLevel pre-tokenizer maps each byte to one printable character (GPT-2's byte-to-unicode
 * table), the vocabulary maps that character to the byte's value, and the ByteLevel decoder maps back. No prefix
 * space is added and no regex split is made, so encoding yields exactly the text's bytes.
 */
final class HfTokenizerFiles {

    static final String TOKENIZER = "tokenizer.json";
    static final String TOKENIZER_CONFIG = "tokenizer_config.json";
    static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";

    private HfTokenizerFiles() {
    }

    /** File name -> JSON of each tokenizer file; {@code maxLength} is the model's context length. */
    static Map<String, ObjectNode> files(int maxLength) {
        Map<String, ObjectNode> files = new LinkedHashMap<>();
        files.put(TOKENIZER, tokenizer());
        files.put(TOKENIZER_CONFIG, tokenizerConfig(maxLength));
        files.put(SPECIAL_TOKENS_MAP, Json.MAPPER.createObjectNode()); // there are none
        return files;
    }

    /**
     * GPT-2's {@code bytes_to_unicode}: printable Latin-1 bytes stand for themselves, the other bytes (controls,
     * space, ...) for code points from 256 up, in byte order. Index {@code b} holds byte {@code b}'s character.
     */
    static String[] byteCharacters() {
        List<Integer> printable = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) {
            printable.add(b);
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            printable.add(b);
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            printable.add(b);
        }
        String[] chars = new String[ByteTokenizer.VOCAB_SIZE];
        int next = 256;
        for (int b = 0; b < chars.length; b++) {
            chars[b] = Character.toString(printable.contains(b) ? b : next++);
        }
        return chars;
    }

    private static ObjectNode tokenizer() {
        ObjectNode t = Json.MAPPER.createObjectNode();
        t.put("version", "1.0");
        t.putNull("truncation");
        t.putNull("padding");
        t.putArray("added_tokens");
        t.putNull("normalizer");
        t.set("pre_tokenizer", byteLevel());
        t.putNull("post_processor");
        t.set("decoder", byteLevel());
        ObjectNode model = t.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        ObjectNode vocab = model.putObject("vocab");
        String[] chars = byteCharacters();
        for (int b = 0; b < chars.length; b++) {
            vocab.put(chars[b], b);
        }
        model.putArray("merges");
        return t;
    }

    private static ObjectNode byteLevel() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("type", "ByteLevel");
        n.put("add_prefix_space", false);
        n.put("trim_offsets", false);
        n.put("use_regex", false);
        return n;
    }

    private static ObjectNode tokenizerConfig(int maxLength) {
        ObjectNode c = Json.MAPPER.createObjectNode();
        c.put("tokenizer_class", "PreTrainedTokenizerFast");
        c.put("model_max_length", maxLength);
        c.put("clean_up_tokenization_spaces", false);
        for (String special : new String[] {"bos_token", "eos_token", "unk_token", "pad_token"}) {
            c.putNull(special);
        }
        c.putObject("added_tokens_decoder");
        return c;
    }
}
