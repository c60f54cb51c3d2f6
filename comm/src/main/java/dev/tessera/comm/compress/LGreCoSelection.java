package dev.tessera.comm.compress;

import dev.tessera.comm.ProcessGroup;
import java.nio.ByteBuffer;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * L-GreCo in training (ALGORITHMS.md 4): every compressed layer of the job picks one of its family's settings
 * ({@link LayerCandidates}: Top-K densities or QSGD bits, one encoder each, or PowerSGD ranks capped by the layer's
 * shape). During the rounds the schedule selects after, the root measures every candidate on each layer's
 * {@code a = g + e} as training would send it (size in bits, squared error), and at the end of the round solves for
 * the smallest total size at the uniform setting's total error ({@link LGreCoSolver}). The next round starts with a
 * broadcast of the choice from the root, so every member switches at the same step boundary; the residuals carry
 * over, as they live in gradient space.
 *
 * <p>Layers are numbered over the whole job, bucket by bucket ({@link #forBucket} gives each bucket's numbering).
 * Runs on the group's reducing thread, one round after another.
 */
public final class LGreCoSelection {

    private final LayerCandidates candidates;
    private final LGreCoSchedule schedule;
    private final int resolution;
    private final double slack;
    private final LGreCoError measure;
    private final boolean root;
    private final long[][] sizeBits;   // per layer, its own number of candidates
    private final double[][] errors;
    private final int[] defaults;
    private final int[] choice;
    private int[] solved;              // the root's choice, waiting for the next round's broadcast
    private boolean measuring;
    private final UnsafeBuffer broadcast;

    /**
     * {@code root}: this member measures and solves (member 0 of the group); {@code slack}: the budget is
     * {@code 1 + slack} times the uniform setting's error ({@link LGreCoSolver#solve(long[][], double[][], int[], int,
     * double)}); {@code measure}: each layer's error as the solver sees it.
     */
    public LGreCoSelection(LayerCandidates candidates, LGreCoSchedule schedule, int resolution, double slack,
                           LGreCoError measure, boolean root) {
        int layers = candidates.layers();
        this.candidates = candidates;
        this.schedule = schedule;
        this.resolution = resolution;
        this.slack = slack;
        this.measure = measure;
        this.root = root;
        this.sizeBits = new long[layers][];
        this.errors = new double[layers][];
        this.defaults = new int[layers];
        for (int l = 0; l < layers; l++) {
            int count = candidates.count(l);
            defaults[l] = candidates.defaultIndex(l);
            if (count < 1 || defaults[l] < 0 || defaults[l] >= count) {
                throw new IllegalArgumentException("layer " + l + ": default candidate " + defaults[l] + " of "
                        + count);
            }
            sizeBits[l] = new long[count];
            errors[l] = new double[count];
        }
        this.choice = defaults.clone();
        this.broadcast = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(4, 4 * layers)));
    }

    /** Layer {@code layer}'s candidate in force. */
    public int chosen(int layer) {
        return choice[layer];
    }

    /** The current choice, a candidate index per layer. */
    public int[] choice() {
        return choice.clone();
    }

    /** The root's solved choice not yet applied (a checkpoint between the two keeps it), or null. */
    public int[] pending() {
        return solved == null ? null : solved.clone();
    }

    /** A resumed run: the choice in force and the root's pending one (null if none). */
    public void restore(int[] inForce, int[] pending) {
        if (inForce.length != choice.length || (pending != null && pending.length != choice.length)) {
            throw new IllegalArgumentException("an L-GreCo choice of " + inForce.length + " layers for a job of "
                    + choice.length);
        }
        for (int l = 0; l < choice.length; l++) {
            if (inForce[l] < 0 || inForce[l] >= sizeBits[l].length
                    || (pending != null && (pending[l] < 0 || pending[l] >= sizeBits[l].length))) {
                throw new IllegalArgumentException("an L-GreCo choice for layer " + l + " is not one of its "
                        + sizeBits[l].length + " candidates");
            }
        }
        System.arraycopy(inForce, 0, choice, 0, choice.length);
        solved = pending == null ? null : pending.clone();
    }

    /**
     * Starts round {@code round} on every member: after a selecting round, the root's choice is broadcast and put
     * in force. Returns whether the choice was exchanged (the layers' settings are then to be switched).
     */
    public boolean beginRound(ProcessGroup group, long round) {
        boolean exchange = round > 0 && schedule.selectsAfter(round - 1);
        if (exchange) {
            if (root) {
                int[] next = solved != null ? solved : choice; // a resumed root without measurements keeps its choice
                for (int l = 0; l < next.length; l++) {
                    broadcast.putInt(4 * l, next[l]);
                }
                solved = null;
            }
            group.broadcast(broadcast, 0);
            for (int l = 0; l < choice.length; l++) {
                int c = broadcast.getInt(4 * l);
                if (c < 0 || c >= sizeBits[l].length) {
                    throw new IllegalStateException("L-GreCo choice " + c + " for layer " + l + " is not one of "
                            + sizeBits[l].length + " candidates");
                }
                choice[l] = c;
            }
        }
        measuring = root && schedule.selectsAfter(round);
        return exchange;
    }

    /** Ends the round: the root solves what it measured during it. */
    public void endRound() {
        if (measuring) {
            solved = LGreCoSolver.solve(sizeBits, errors, defaults, resolution, slack);
            measuring = false;
        }
    }

    /** The observer of a bucket whose layer {@code l} is job layer {@code jobLayerOf[l]} (-1: sent raw). */
    public LayerObserver forBucket(int[] jobLayerOf) {
        return new LayerObserver() {
            @Override
            public void beforeEncode(int layer, DirectBuffer values, int index, int n) {
                if (measuring) {
                    measure(jobLayerOf[layer], values, index, n);
                }
            }
        };
    }

    private void measure(int layer, DirectBuffer values, int index, int n) {
        double[] measured = errors[layer];
        candidates.measure(layer, values, index, n, sizeBits[layer], measured);
        for (int c = 0; c < measured.length; c++) {
            measured[c] = measure.of(measured[c]);
        }
    }
}
