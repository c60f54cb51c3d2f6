package dev.tessera.worker.bench;

import dev.tessera.optimizers.AdamW;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.ModelStepTimer;
import dev.tessera.worker.model.RecomputePolicy;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.train.PeakRss;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Times full training steps (forward, backward, global norm, AdamW) of a preset and an fp32 sgemm
 * 2048^3 in the same process, so model GFLOP/s can be read as a fraction of this machine's peak.
 */
public final class ModelBench {

    /**
     * @param blas         the OpenBLAS kernel both the model's gemms and the sgemm ran on
     * @param recompute    which blocks recomputed their activations in backward
     * @param sgemmGflops  the better of two sgemm peaks, one before the model is built and one after its steps
     * @param activationBytes what the model's activation buffers take ({@link Transformer#activationBytes()})
     * @param peakRssBytes the process's peak resident memory at the end ({@link PeakRss}), -1 if unknown
     */
    public record Result(String preset, int steps, double msPerStep, double tokensPerSecond,
                         double modelGflops, double sgemmGflops, long params, BlasKernel blas,
                         RecomputePolicy recompute, long activationBytes, long peakRssBytes) {
        public double peakFraction() {
            return modelGflops / sgemmGflops;
        }

        public String json() {
            return String.format(java.util.Locale.ROOT,
                    "{\"preset\":\"%s\",\"tokens_per_s\":%.1f,\"model_gflops\":%.2f,\"sgemm_gflops\":%.2f,"
                            + "\"peak_fraction\":%.4f,\"ms_per_step\":%.2f,\"steps\":%d,\"params\":%d,"
                            + "\"recompute_every\":%d,\"activation_bytes\":%d,\"peak_rss_bytes\":%d,"
                            + "\"blas\":{\"kernel\":\"%s\",\"chosen_by\":\"%s\"}}",
                    preset, tokensPerSecond, modelGflops, sgemmGflops, peakFraction(), msPerStep, steps, params,
                    recompute.every(), activationBytes, peakRssBytes, blas.kernel(), blas.chosenBy());
        }
    }

    private ModelBench() {
    }

    /** {@code recompute}: which blocks recompute their activations in backward (activation checkpointing). */
    public static Result run(ModelPreset preset, int timedSteps, RecomputePolicy recompute) {
        BlasKernel blas = BlasKernel.inUse();
        // Measured before the model exists too: with a large model resident the same gemm ran ~12% slower (page
        // cache, TLB), and the peak is the best this machine does, not the best it does with our memory in use.
        double sgemmBefore = sgemmGflops();
        int warmupSteps = preset.modelBenchWarmup();
        int batch = preset.batch();
        int seq = preset.seq();
        Transformer model = new Transformer(preset.config(), DataType.FLOAT, batch, seq, FlatMemory.ND4J,
                recompute);
        model.initialize(1);
        AdamW adamw = new AdamW(model.parameters().params(), model.parameters().grads(),
                model.parameters().spans(), new AdamWConfig(0.9, 0.95, 1e-8, 0.1));
        int[] inputs = new int[batch * seq];
        int[] targets = new int[batch * seq];
        SplittableRandom random = new SplittableRandom(42);
        for (int i = 0; i < inputs.length; i++) {
            inputs[i] = random.nextInt(preset.config().vocabSize());
            targets[i] = random.nextInt(preset.config().vocabSize());
        }
        double[] stepMs = new double[timedSteps];
        for (int s = 0; s < warmupSteps + timedSteps; s++) {
            long start = System.nanoTime();
            if (s == warmupSteps) {
                ModelStepTimer.reset();
            }
            model.forwardBackward(inputs, targets);
            long t = ModelStepTimer.start();
            double norm = Math.sqrt(GradNorm.sumOfSquares(model.parameters().grads()));
            t = ModelStepTimer.stop("grad_norm", t);
            adamw.step(s + 1, 1e-4, GradNorm.clipScale(norm, 1.0));
            ModelStepTimer.stop("adamw", t);
            if (s >= warmupSteps) {
                stepMs[s - warmupSteps] = (System.nanoTime() - start) / 1e6;
            }
        }
        if (ModelStepTimer.enabled()) {
            System.err.print(ModelStepTimer.report(timedSteps));
        }
        double median = median(stepMs);
        double tokensPerSecond = batch * seq / (median / 1e3);
        double gflops = tokensPerSecond * ModelPreset.flopsPerToken(preset.config(), seq) / 1e9;
        long peakRss = PeakRss.bytes(); // before the sgemm's 48 MiB
        return new Result(preset.id(), timedSteps, median, tokensPerSecond, gflops,
                Math.max(sgemmBefore, sgemmGflops()), model.parameters().numel(), blas, recompute,
                model.activationBytes(), peakRss);
    }

    /** Best of several fp32 2048^3 gemms into a preallocated output: this machine's BLAS peak now. */
    public static double sgemmGflops() {
        int n = 2048;
        INDArray a = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray b = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray c = Nd4j.create(DataType.FLOAT, n, n);
        double best = Double.MAX_VALUE;
        for (int i = 0; i < 6; i++) {
            long start = System.nanoTime();
            Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
            best = Math.min(best, (System.nanoTime() - start) / 1e9);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int mid = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
