package dev.tessera.coordinator.config;

import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;

import java.io.StringReader;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A YAML config document as nested maps plus the line and column of every key, so errors can say
 * "job.yaml:7:3: ...". Walks snakeyaml's node tree itself (rather than {@code Yaml.load}) to keep those marks.
 */
final class YamlDocument {

    private final Map<String, Object> values;
    private final Map<String, String> positionByPath;
    private final String sourceName;
    private final NodeConstructor constructor = new NodeConstructor(); // stateful, so one per document

    private YamlDocument(Map<String, Object> values, Map<String, String> positionByPath, String sourceName) {
        this.values = values;
        this.positionByPath = positionByPath;
        this.sourceName = sourceName;
    }

    /** Parses {@code text}; {@code sourceName} (the file as the user named it) prefixes every error. */
    static YamlDocument parse(String text, String sourceName) {
        Node root;
        try {
            root = newYaml().compose(new StringReader(text));
        } catch (MarkedYAMLException e) {
            throw ConfigError.at(position(sourceName, e.getProblemMark()), "invalid YAML: " + e.getProblem());
        } catch (YAMLException e) {
            throw ConfigError.at(sourceName, "invalid YAML: " + e.getMessage());
        }
        YamlDocument doc = new YamlDocument(new LinkedHashMap<>(), new HashMap<>(), sourceName);
        if (root == null) {
            return doc; // an empty file, or one with only comments, keeps every default
        }
        if (!(root instanceof MappingNode mapping)) {
            throw ConfigError.at(position(sourceName, root.getStartMark()),
                    "the top level must be a mapping of sections (model:, data:, train:, ...)");
        }
        doc.readMapping(mapping, "", doc.values);
        return doc;
    }

    Map<String, Object> values() {
        return values;
    }

    /** "file:line:col" of the key at a dotted path, or just the file name for a key it does not hold. */
    String originOf(String dottedPath) {
        return positionByPath.getOrDefault(dottedPath, sourceName);
    }

    private void readMapping(MappingNode mapping, String prefix, Map<String, Object> into) {
        for (NodeTuple tuple : mapping.getValue()) {
            Node keyNode = tuple.getKeyNode();
            String where = position(sourceName, keyNode.getStartMark());
            if (!(keyNode instanceof ScalarNode scalarKey)) {
                throw ConfigError.at(where, "keys must be plain names" + (prefix.isEmpty() ? "" : " in " + prefix));
            }
            String key = scalarKey.getValue();
            String path = prefix + key;
            if (into.containsKey(key)) {
                throw ConfigError.at(where, "duplicate key '" + path + "'; keep only one");
            }
            positionByPath.put(path, where);
            Node valueNode = tuple.getValueNode();
            if (valueNode instanceof MappingNode child) {
                Map<String, Object> section = new LinkedHashMap<>();
                readMapping(child, path + ".", section);
                into.put(key, section);
            } else {
                into.put(key, constructor.construct(valueNode));
            }
        }
    }

    private static Yaml newYaml() {
        LoaderOptions options = new LoaderOptions();
        options.setAllowDuplicateKeys(false);
        options.setMaxAliasesForCollections(50); // a config never needs more; bounds "billion laughs" input
        return new Yaml(new SafeConstructor(options));
    }

    private static String position(String sourceName, Mark mark) {
        return mark == null ? sourceName : sourceName + ":" + (mark.getLine() + 1) + ":" + (mark.getColumn() + 1);
    }

    /** Turns a scalar or sequence node into plain Java values with snakeyaml's safe type resolution. */
    private static final class NodeConstructor extends SafeConstructor {
        NodeConstructor() {
            super(new LoaderOptions());
        }

        Object construct(Node node) {
            return constructObject(node);
        }
    }
}
