package dev.tessera.optimizers.co2;

import dev.tessera.optimizers.kernel.NativeMemory;
import org.agrona.DirectBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The round loop of ALGORITHMS.md §6 in process, without networking: G workers are simulated by {@link Local},
 * which maps the round's start {@code x_t} to the mean {@code ybar_t} of the workers' local results (what the
 * all-reduce would deliver). The delayed loop keeps {@code ybar_t} pending in one of two buffers while round
 * {@code t+1} fills the other, as the non-blocking all-reduce would.
 */
final class Co2Rounds {

    /** Steps 1-2 of a round for all workers: {@code ybar[k]} from {@code start[k]} ({@code x_t}). */
    @FunctionalInterface
    interface Local {
        void run(int round, float[] start, float[] ybar);
    }

    /** Called after step 3 of each round, with the round's average {@code ybar_t}. */
    @FunctionalInterface
    interface AfterStep {
        void run(int round, float[] ybar);
    }

    private Co2Rounds() {
    }

    static INDArray floats(float... values) {
        return Nd4j.createFromArray(values.clone()).castTo(DataType.FLOAT);
    }

    static float[] read(INDArray a) {
        return a.toFloatVector();
    }

    static DirectBuffer view(INDArray a) {
        return NativeMemory.unsafe(a, 0, a.length());
    }

    /**
     * §6's loop as written: round t starts at x_t, launches ybar_t, applies the pending ybar_{t-1} (round 0 skips)
     * and writes x_{t+1} to the live params. Returns x_1 .. x_rounds, row t-1 = x_t.
     */
    static float[][] delayed(Co2OuterStep outer, INDArray live, int rounds, Local local, AfterStep after) {
        int n = (int) live.length();
        INDArray[] pending = {Nd4j.zeros(DataType.FLOAT, n), Nd4j.zeros(DataType.FLOAT, n)};
        float[][] trajectory = new float[rounds][];
        outer.begin();
        for (int t = 0; t < rounds; t++) {
            float[] ybar = new float[n];
            local.run(t, read(live), ybar);
            pending[t & 1].assign(floats(ybar)); // AAR_t launched; ybar_{t-1} is still in the other buffer
            if (t == 0) {
                outer.skip();
            } else {
                outer.apply(view(pending[(t - 1) & 1]));
            }
            outer.writeOuter();
            after.run(t, ybar);
            trajectory[t] = read(live);
        }
        return trajectory;
    }

    static float[][] delayed(Co2OuterStep outer, INDArray live, int rounds, Local local) {
        return delayed(outer, live, rounds, local, (t, ybar) -> { });
    }

    /** The loop with synchronous averaging (oracle 1): round t applies its own ybar_t at once. */
    static float[][] synchronous(Co2OuterStep outer, INDArray live, int rounds, Local local, AfterStep after) {
        int n = (int) live.length();
        INDArray average = Nd4j.zeros(DataType.FLOAT, n);
        float[][] trajectory = new float[rounds][];
        outer.begin();
        for (int t = 0; t < rounds; t++) {
            float[] ybar = new float[n];
            local.run(t, read(live), ybar);
            average.assign(floats(ybar));
            outer.applySynchronous(view(average));
            outer.writeOuter();
            after.run(t, ybar);
            trajectory[t] = read(live);
        }
        return trajectory;
    }
}
