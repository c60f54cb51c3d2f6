package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

/** The Jackson mappers of the package. Duplicate keys are refused: in a header they would hide a tensor. */
final class Json {

    /** Indented output, because checkpoint JSON files are read by people too. */
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    /** Compact output for JSON embedded in other formats (safetensors headers). */
    static final ObjectMapper COMPACT = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private Json() {
    }
}
