package dev.tessera.coordinator.run;

import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Training progress for people. On a terminal: one line redrawn in place with a bar, step/total, loss, tokens/s
 * and ETA. Elsewhere (a log file, CI): a plain line every ~5% of the steps and at the last step, so logs stay
 * short. Evaluations and checkpoints always get their own line. Steps are counted from 1; the last step is
 * {@code totalSteps}.
 */
public final class ProgressBar implements TrainingListener {

    private static final int BAR_WIDTH = 24;
    private static final long REDRAW_NANOS = 100_000_000L; // 10 redraws a second is smooth and cheap

    private final PrintStream out;
    private final boolean interactive;
    private final LongSupplier nanoTime;

    private long firstStep = 1;
    private long totalSteps;
    private long firstSeenStep = -1;
    private long firstSeenNanos;
    private long lastDrawNanos;
    private double smoothedTokensPerSecond = Double.NaN;
    private int lastLineLength;
    private boolean midLine;

    public ProgressBar(PrintStream out, boolean interactive, LongSupplier nanoTime) {
        this.out = out;
        this.interactive = interactive;
        this.nanoTime = nanoTime;
    }

    /** Progress on {@code out}, redrawn in place only when that is standard output on a real terminal. */
    public static ProgressBar on(PrintStream out) {
        return new ProgressBar(out, out == System.out && isInteractiveTerminal(), System::nanoTime);
    }

    /** A console exists (output not redirected) and the terminal understands carriage returns. */
    public static boolean isInteractiveTerminal() {
        String term = System.getenv("TERM");
        return System.console() != null && !"dumb".equals(term);
    }

    @Override
    public synchronized void onStart(long firstStep, long totalSteps) {
        this.firstStep = firstStep;
        this.totalSteps = totalSteps;
    }

    @Override
    public synchronized void onStep(StepMetrics m) {
        long now = nanoTime.getAsLong();
        if (firstSeenStep < 0) {
            // The first step carries JIT warm-up and allocation; timing starts after it so the ETA is not inflated.
            firstSeenStep = m.step();
            firstSeenNanos = now;
        }
        double tps = m.tokensPerSecond();
        if (Double.isFinite(tps)) {
            smoothedTokensPerSecond = Double.isNaN(smoothedTokensPerSecond) ? tps
                    : 0.8 * smoothedTokensPerSecond + 0.2 * tps;
        }
        boolean last = totalSteps > 0 && m.step() >= totalSteps;
        if (interactive) {
            if (last || now - lastDrawNanos >= REDRAW_NANOS || lastDrawNanos == 0) {
                lastDrawNanos = now;
                redraw(barLine(m, now));
                if (last) {
                    endLine();
                }
            }
        } else if (last || m.step() == firstStep || m.step() % logInterval() == 0) {
            out.println(logLine(m, now));
            out.flush();
        }
    }

    @Override
    public synchronized void onEval(long step, double evalLoss) {
        printLine("eval  step " + step + stepsOf() + "  val loss " + HumanFormat.loss(evalLoss));
    }

    @Override
    public synchronized void onCheckpoint(long step, Path directory) {
        printLine("checkpoint  step " + step + " -> " + directory);
    }

    /** Ends a half-drawn bar line, for loops that stop before {@code totalSteps} (failure, early stop). */
    public synchronized void finish() {
        endLine();
    }

    private String barLine(StepMetrics m, long now) {
        double fraction = totalSteps > 0 ? Math.min(1.0, (double) m.step() / totalSteps) : 0.0;
        int filled = (int) Math.round(fraction * BAR_WIDTH);
        return "[" + "#".repeat(filled) + ".".repeat(BAR_WIDTH - filled) + "] " + m.step() + stepsOf()
                + "  loss " + HumanFormat.loss(m.loss())
                + moe(m)
                + "  " + HumanFormat.rate(smoothedTokensPerSecond) + " tok/s"
                + "  ETA " + HumanFormat.duration(etaSeconds(m.step(), now));
    }

    private String logLine(StepMetrics m, long now) {
        String percent = totalSteps > 0
                ? String.format(Locale.ROOT, " (%d%%)", Math.round(100.0 * m.step() / totalSteps)) : "";
        return "step " + m.step() + stepsOf() + percent
                + "  loss " + HumanFormat.loss(m.loss())
                + "  aux " + HumanFormat.loss(m.auxLoss())
                + moe(m)
                + "  lr " + String.format(Locale.ROOT, "%.3e", m.lr())
                + "  grad_norm " + String.format(Locale.ROOT, "%.3f", m.gradNorm())
                + "  " + HumanFormat.rate(smoothedTokensPerSecond) + " tok/s"
                + "  ETA " + HumanFormat.duration(etaSeconds(m.step(), now));
    }

    /** The worst expert load over E's even share, and the fraction of assignments dropped (MoE models only). */
    private static String moe(StepMetrics m) {
        if (m.moe().layerCount() == 0) {
            return "";
        }
        return String.format(Locale.ROOT, "  imbalance %.2f  dropped %.1f%%", m.moe().worstImbalance(),
                100 * m.moe().droppedFraction());
    }

    private double etaSeconds(long step, long now) {
        long timedSteps = step - firstSeenStep;
        if (totalSteps <= 0 || timedSteps <= 0) {
            return step >= totalSteps && totalSteps > 0 ? 0 : Double.NaN;
        }
        double secondsPerStep = (now - firstSeenNanos) / 1e9 / timedSteps;
        return Math.max(0, totalSteps - step) * secondsPerStep;
    }

    private long logInterval() {
        return Math.max(1, Math.round(totalSteps * 0.05));
    }

    private String stepsOf() {
        return totalSteps > 0 ? "/" + totalSteps : "";
    }

    private void redraw(String line) {
        // Pad with spaces so a shorter line fully covers the previous one.
        int pad = Math.max(0, lastLineLength - line.length());
        out.print("\r" + line + " ".repeat(pad));
        out.flush();
        lastLineLength = line.length();
        midLine = true;
    }

    private void printLine(String line) {
        if (interactive && midLine) {
            out.print("\r" + " ".repeat(lastLineLength) + "\r");
            midLine = false;
            lastLineLength = 0;
            lastDrawNanos = 0; // redraw the bar at the next step
        }
        out.println(line);
        out.flush();
    }

    private void endLine() {
        if (midLine) {
            out.println();
            out.flush();
            midLine = false;
            lastLineLength = 0;
        }
    }
}
