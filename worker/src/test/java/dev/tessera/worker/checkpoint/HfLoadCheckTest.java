package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.StringJoiner;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The exported checkpoint of each architecture gives Tessera's loss in docs/anchors/hf_load_check.py, an
 * independent PyTorch forward pass of the Hugging Face module structure that config.json names. Needs python3
 * with torch (Debian: apt-get install python3-torch); skipped where it is missing, as in CI.
 */
class HfLoadCheckTest {

    private static final Path SCRIPT = Path.of("..", "docs", "anchors", "hf_load_check.py");
    private static final int BATCH = 2;
    private static final int SEQ = 12;

    @TempDir
    Path run;

    @Test
    void pytorchGivesTesserasLossForLlamaMixtralAndQwen2Moe() throws Exception {
        String python = pythonWithTorch();
        Assumptions.assumeTrue(python != null, "no python3 with torch is installed");
        List<ModelConfig> configs = List.of(
                new ModelConfig(32, 8, 3, 2, 12, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 16),
                new ModelConfig(32, 8, 2, 2, 12, 4, 2, 1, 6, 500000.0, 1e-6, 0.01, 16),
                new ModelConfig(32, 8, 4, 2, 12, 4, 2, 2, 6, 10000.0, 1e-5, 0.01, 16));
        for (ModelConfig cfg : configs) {
            Transformer model = new Transformer(cfg, DataType.DOUBLE, BATCH, SEQ);
            randomize(model.parameters(), 17);
            int[] tokens = new Random(5).ints(BATCH * (SEQ + 1), 0, cfg.vocabSize()).toArray();
            int[] inputs = new int[BATCH * SEQ];
            int[] targets = new int[BATCH * SEQ];
            for (int r = 0; r < BATCH; r++) {
                for (int j = 0; j < SEQ; j++) {
                    inputs[r * SEQ + j] = tokens[r * (SEQ + 1) + j];
                    targets[r * SEQ + j] = tokens[r * (SEQ + 1) + j + 1];
                }
            }
            double tessera = model.evaluate(inputs, targets);
            Path dir = CheckpointWriter.write(run.resolve("m" + cfg.moeEvery()), 1, cfg, model.parameters(),
                    Map.of(), Map.of("step", 1));
            String line = pytorch(python, dir, tokens);
            String architecture = HfArchitecture.of(cfg).className;
            assertTrue(line.startsWith(architecture + " loss "), line);
            double torch = Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            System.out.printf("hf_load_check %s: tessera %.17g pytorch %.17g diff %.3g%n", architecture, tessera,
                    torch, Math.abs(tessera - torch));
            assertEquals(tessera, torch, 1e-12, architecture);
        }
    }

    /** Gains near 1, matrices ~ N(0, 1/fan_in): activations of order 1 and decisive routing. */
    private static void randomize(ParameterStore store, long seed) {
        Random rnd = new Random(seed);
        for (ParameterStore.Tensor t : store.tensors()) {
            INDArray p = store.param(t.name());
            double std = t.shape().length == 1 ? 0.1 : 1 / Math.sqrt(t.shape()[1]);
            double mean = t.shape().length == 1 ? 1 : 0;
            INDArray flat = p.reshape(p.length());
            for (long i = 0; i < p.length(); i++) {
                flat.putScalar(i, mean + std * rnd.nextGaussian());
            }
        }
    }

    /** The first of PATH's python3 and Debian's (where apt's python3-torch goes) that imports torch, or null. */
    private static String pythonWithTorch() throws InterruptedException {
        for (String python : List.of("python3", "/usr/bin/python3")) {
            try {
                Process p = new ProcessBuilder(python, "-c", "import torch").redirectErrorStream(true).start();
                p.getInputStream().readAllBytes();
                if (p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0) {
                    return python;
                }
            } catch (IOException e) {
                // not installed: try the next
            }
        }
        return null;
    }

    private static String pytorch(String python, Path dir, int[] tokens) throws IOException, InterruptedException {
        StringJoiner csv = new StringJoiner(",");
        for (int t : tokens) {
            csv.add(Integer.toString(t));
        }
        List<String> cmd = new ArrayList<>(List.of(python, SCRIPT.toString(), dir.toString(), "--tokens",
                csv.toString(), "--batch", Integer.toString(BATCH)));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "hf_load_check.py did not finish in 300 s");
        assertEquals(0, p.exitValue(), out);
        String[] lines = out.split("\n");
        return lines[lines.length - 1];
    }
}
