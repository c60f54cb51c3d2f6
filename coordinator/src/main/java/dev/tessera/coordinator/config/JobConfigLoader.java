package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.job.JobConfig;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Resolves a job config in layers: the embedded defaults, optionally a base map (a resumed run's stored
 * config), optionally a YAML file, then each {@code --set key=value} in order; then binds the spec and validates
 * it. Every problem is a one-line {@link UserInputException} naming the file position or flag and the key. Writes
 * the spec back as YAML too ({@link #toYaml}).
 */
public final class JobConfigLoader {

    private JobConfigLoader() {
    }

    /** Defaults, then {@code yamlOrNull}, then {@code sets} ("dotted.key=value", value read as a YAML scalar). */
    public static JobConfig load(Path yamlOrNull, List<String> sets) {
        return load(null, null, yamlOrNull, sets);
    }

    /**
     * As {@link #load(Path, List)}, over a base (e.g. the stored config of a run being resumed) that sits
     * between the defaults and the file. {@code baseName} names the base in errors.
     */
    public static JobConfig load(Map<String, ?> baseOrNull, String baseName, Path yamlOrNull, List<String> sets) {
        ConfigTree tree = new ConfigTree(JobConfig.defaults().toMap());
        if (baseOrNull != null) {
            tree.merge(baseOrNull, path -> baseName);
        }
        if (yamlOrNull != null) {
            mergeFile(tree, yamlOrNull);
        }
        applySets(tree, sets);
        return resolve(tree);
    }

    /**
     * The general form, which {@code Trainer.Builder} uses: {@code base} in place of the defaults, then each YAML
     * file in order, then each override in order.
     */
    public static JobConfig load(JobConfig base, List<Path> yamlLayers, List<ConfigOverride> overrides) {
        ConfigTree tree = new ConfigTree(base.toMap());
        for (Path file : yamlLayers) {
            mergeFile(tree, file);
        }
        overrides.forEach(o -> apply(tree, o));
        return resolve(tree);
    }

    /** Reads back a config stored by {@link JobConfig#toMap()} (e.g. from trainer_state.json), and validates it. */
    public static JobConfig fromMap(Map<String, ?> resolved, String sourceName) {
        return load(resolved, sourceName, null, List.of());
    }

    /** Parses a YAML document given as text; {@code sourceName} names it in errors. */
    public static JobConfig fromYaml(String yaml, String sourceName) {
        ConfigTree tree = new ConfigTree(JobConfig.defaults().toMap());
        YamlDocument doc = YamlDocument.parse(yaml, sourceName);
        tree.merge(doc.values(), doc::originOf);
        return resolve(tree);
    }

    /** The resolved config as a YAML document that {@link #load} reads back unchanged. */
    public static String toYaml(JobConfig config) {
        DumperOptions options = new DumperOptions();
        options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        options.setIndent(2);
        return new Yaml(options).dump(config.toMap());
    }

    private static JobConfig resolve(ConfigTree tree) {
        JobConfig config = new ConfigValues(tree).read(JobConfig.class, "");
        JobConfigValidator.validate(config, tree::originOf);
        return config;
    }

    private static void mergeFile(ConfigTree tree, Path file) {
        YamlDocument doc = YamlDocument.parse(readConfigFile(file), file.toString());
        tree.merge(doc.values(), doc::originOf);
    }

    private static void applySets(ConfigTree tree, List<String> sets) {
        for (String set : sets == null ? List.<String>of() : sets) {
            apply(tree, ConfigOverride.parse(set));
        }
    }

    private static void apply(ConfigTree tree, ConfigOverride override) {
        tree.set(override.key(), override.value(), override.origin());
    }

    private static String readConfigFile(Path file) {
        String name = file.toString();
        if (Files.isDirectory(file)) {
            throw new UserInputException(name + ": is a directory; --config expects a YAML file");
        }
        try {
            byte[] bytes = Files.readAllBytes(file);
            return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (NoSuchFileException e) {
            throw new UserInputException(name + ": config file not found (resolved to "
                    + file.toAbsolutePath().normalize() + "); check the --config path");
        } catch (AccessDeniedException e) {
            throw new UserInputException(name + ": permission denied reading the config file");
        } catch (CharacterCodingException e) {
            throw new UserInputException(name + ": not UTF-8 text; save the config file as UTF-8");
        } catch (IOException e) {
            throw new UserInputException(name + ": cannot read the config file (" + e.getMessage() + ")", e);
        }
    }
}
