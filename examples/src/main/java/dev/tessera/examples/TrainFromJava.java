package dev.tessera.examples;

import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.Trainer;
import dev.tessera.coordinator.cli.ErrorReporter;
import dev.tessera.worker.job.OptimizerKind;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Trains a small Mixtral-style model on the built-in synthetic corpus from Java, on two worker processes with
 * ZeRO-1 and CAME, printing its own progress line every 25 steps instead of Tessera's progress bar.
 * <pre>
 *   ./tessera example TrainFromJava [run-directory] [steps]
 * </pre>
 */
public final class TrainFromJava {

    private TrainFromJava() {
    }

    public static void main(String[] args) {
        ErrorReporter.exitWith(() -> {
            Path out = Path.of(args.length > 0 ? args[0] : "runs/train-from-java");
            long steps = args.length > 1 ? Long.parseLong(args[1]) : 200;
            ExampleJob.report(train(out, steps, System.out));
        });
    }

    /** Trains the example's job into {@code out} for {@code steps} steps, reporting to {@code progress}. */
    public static TrainResult train(Path out, long steps, PrintStream progress) throws Exception {
        return Trainer.builder()
                .set("model.d_model", 64)
                .set("model.n_layers", 2)
                .set("model.n_heads", 4)
                .set("model.d_ff", 172)
                .set("model.n_experts", 4)
                .set("model.expert_d_ff", 86)
                .set("train.steps", steps)
                .set("train.batch_size", 8)
                .set("train.seq_len", 64)
                .set("optimizer.name", OptimizerKind.CAME)
                .set("optimizer.lr", 2e-3)
                .set("optimizer.warmup_steps", Math.min(20, steps))
                .set("eval.every", Math.max(1, steps / 2))
                .set("checkpoint.every", steps)
                .set("mesh.dp", 2)
                .set("zero.stage", 1)
                .out(out)
                .log(new PrintStream(OutputStream.nullOutputStream())) // the listener below reports instead
                .listener(new TrainingListener() {
                    @Override
                    public void onStep(StepMetrics m) {
                        if (m.step() % 25 == 0 || m.step() == steps) {
                            progress.printf(Locale.ROOT, "step %4d  loss %.4f  lr %.2e  %.0f tokens/s%n", m.step(),
                                    m.loss(), m.lr(), m.tokensPerSecond());
                        }
                    }

                    @Override
                    public void onEval(long step, double evalLoss) {
                        progress.printf(Locale.ROOT, "step %4d  eval loss %.4f%n", step, evalLoss);
                    }
                })
                .build()
                .fit();
    }
}
