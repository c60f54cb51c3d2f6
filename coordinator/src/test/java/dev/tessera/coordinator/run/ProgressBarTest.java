package dev.tessera.coordinator.run;

import dev.tessera.worker.model.MoeStats;
import dev.tessera.worker.train.StepMetrics;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProgressBarTest {

    private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    private final AtomicLong clock = new AtomicLong(1);

    private ProgressBar bar(boolean interactive) {
        return new ProgressBar(new PrintStream(buffer, true, StandardCharsets.UTF_8), interactive, clock::get);
    }

    private static StepMetrics step(long s) {
        return new StepMetrics(s, 3.0, 0.0, 1e-3, 0.5, 20_000, 0.1, 0.0);
    }

    private String output() {
        return buffer.toString(StandardCharsets.UTF_8);
    }

    @Test
    void plainLogGetsALineEveryFivePercentAndAtTheEnd() {
        ProgressBar bar = bar(false);
        bar.onStart(1, 100);
        for (int s = 1; s <= 100; s++) {
            clock.addAndGet(100_000_000L); // 0.1 s per step
            bar.onStep(step(s));
            if (s == 50) {
                bar.onEval(50, 2.5);
            }
        }
        List<String> lines = output().lines().toList();
        assertEquals(1 + 20 + 1, lines.size(), output()); // step 1, every 5th step, one eval line
        assertTrue(lines.get(0).startsWith("step 1/100 (1%)"), lines.get(0));
        assertTrue(lines.contains("eval  step 50/100  val loss 2.5000"), output());
        String last = lines.get(lines.size() - 1);
        assertTrue(last.startsWith("step 100/100 (100%)") && last.contains("ETA 0s"), last);
        assertTrue(lines.get(2).contains("ETA 9s"), lines.get(2)); // after step 10: 90 steps x 0.1 s
        assertFalse(output().contains("\r"));
    }

    @Test
    void terminalRedrawsOneLineAndEndsItAfterTheLastStep() {
        ProgressBar bar = bar(true);
        bar.onStart(1, 10);
        for (int s = 1; s <= 10; s++) {
            clock.addAndGet(200_000_000L);
            bar.onStep(step(s));
        }
        String out = output();
        assertTrue(out.startsWith("\r["), out);
        assertTrue(out.contains("10/10"), out);
        assertTrue(out.contains("20.0k tok/s"), out);
        assertTrue(out.endsWith("\n"), "the bar line is ended");
        assertEquals(1, out.chars().filter(c -> c == '\n').count(), "one line, redrawn in place with \\r");
    }

    @Test
    void evalOnATerminalClearsTheBarAndPrintsItsOwnLine() {
        ProgressBar bar = bar(true);
        bar.onStart(1, 10);
        bar.onStep(step(1));
        bar.onEval(1, 2.0);
        bar.finish();
        assertTrue(output().contains("\reval  step 1/10  val loss 2.0000\n"), output());
    }

    @Test
    void moeRunsShowTheWorstLoadImbalanceAndTheFractionDropped() {
        ProgressBar bar = bar(false);
        bar.onStart(1, 10);
        // two MoE layers of 4 experts: the worst load is 0.4 of its layer's (1.6 x an even share); 5% and 15% dropped
        MoeStats moe = new MoeStats(4, new double[] {1, 0.05, 1.0, 2.0, 0, 0, 0.25, 0.25, 0.25, 0.25,
                3, 0.15, 1.1, 2.1, 0, 0, 0.4, 0.2, 0.2, 0.2});
        clock.addAndGet(100_000_000L);
        bar.onStep(new StepMetrics(1, 3.0, 2.1, 1e-3, 0.5, 20_000, 0.1, 0.0, 0.0, 0, moe));
        assertTrue(output().contains("imbalance 1.60  dropped 10.0%"), output());
        bar.onStep(step(2));
        assertFalse(output().lines().toList().get(1).contains("imbalance"), "a dense step shows none");
    }
}
