package dev.tessera.optimizers.co2;

import dev.tessera.comm.FloatRun;
import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.optimizers.kernel.KernelThreads;
import dev.tessera.optimizers.kernel.NativeMemory;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * CO2's outer step (ALGORITHMS.md §6, "Algorithm", step 3) over the range {@code [from, to)} of the flat
 * float32 parameter buffer. It keeps the outer parameters {@code x_prev = x_{t-1}}, {@code x = x_t} and the outer
 * momentum {@code m} for that range, allocated once in native memory; round {@code t} applies the average
 * {@code ybar_{t-1}} of the previous round's all-reduce, which is one round stale:
 * <pre>
 *   Delta  = (x_{t-1} - ybar_{t-1}) / lambda_l       lambda_l from the {@link GapPenalty}, per span
 *   m      = beta m + Delta
 *   m      = clamp(m, -phi, +phi)                    if clip; in place (the reference code's clamp is a no-op)
 *   x_{t+1} = x_t - alpha m
 *   x_prev = x_t ; x = x_{t+1}
 * </pre>
 * Round 0 has nothing to apply ({@link #skip}: {@code x_1 = x_0}). {@link #applySynchronous} is the same update
 * with the staleness switched off (the pseudo-gradient measured at {@code x_t} itself, from this round's average):
 * the reduction of §6 oracle 1 (Local SGD, and with {@code tau = 1} data-parallel SGD) and the SlowMo/DiLoCo form.
 *
 * <p><b>Sharding.</b> The update is elementwise, so each rank can own one range ({@code 2..3 Psi / S} state per
 * rank, ZeRO-style) and get the bits the unsharded step gets for those elements; only a gap-scaled penalty over a
 * tensor cut between ranks differs (see {@link GapPenalty}). A range is one view, at most
 * {@link NativeMemory#MAX_VIEW_BYTES} bytes, as a collective's buffer is; a larger one is several outer steps.
 *
 * <p><b>Arithmetic.</b> float32 per element, as AdamW's float32 path computes: {@code lambda_l}, {@code beta},
 * {@code alpha} are rounded to float once per call, {@code phi} is rounded down so that {@code |m| <= phi} holds
 * in real numbers. Each element is read and written once per step; the range is cut into fixed parts over the
 * {@link KernelThreads} with no reduction across parts, and the per-span norms of a gap-scaled penalty are summed
 * in double in element order on the caller, so the result is deterministic and independent of the thread count.
 *
 * <p>What it does not do (later work): launch or wait for the all-reduce, run the inner optimizer, broadcast the
 * owned range to the other ranks, or read a config file. It is bound to the live parameter buffer it reads the
 * initial parameters from ({@link #begin}) and writes each round's start point to ({@link #writeOuter}), so no
 * call makes a view or allocates a buffer.
 */
public final class Co2OuterStep {

    private final INDArray params; // the live flat parameters, held for the view below
    private final Co2Config config;
    private final GapPenalty penalty;
    private final long from;
    private final int length; // elements in [from, to)
    private final INDArray xPrevArray; // x_{t-1}, x_t, m: length elements each; null when the range is empty
    private final INDArray xArray;
    private final INDArray mArray;
    private final UnsafeBuffer live; // views, made once: byte 4k is element from + k
    private final UnsafeBuffer xPrev;
    private final UnsafeBuffer x;
    private final UnsafeBuffer m;

    // The owned part of every span, relative to from: [pieceLo[p], pieceHi[p]), with its penalty this call.
    private final ParamSpan[] pieceSpan;
    private final int[] pieceLo;
    private final int[] pieceHi;
    private final float[] pieceLambda;

    private final KernelThreads.LongBody body = this::updatePart; // made once
    private DirectBuffer averaged; // ybar of the call in progress
    private Input input; // the call in progress: what {@code averaged} holds, and the x it is measured from
    private boolean begun;

    /** The unsharded outer step with the constant penalty {@code co2.lambda}. */
    public Co2OuterStep(INDArray params, List<ParamSpan> spans, Co2Config config) {
        this(params, spans, config, GapPenalty.constant(config.gapPenalty()), Shard.whole(params.length()));
    }

    /**
     * The outer step of the rank owning {@code range} of the flat parameters {@code params} (float32,
     * contiguous), whose tensors are {@code spans}; they must cover the range.
     */
    public Co2OuterStep(INDArray params, List<ParamSpan> spans, Co2Config config, GapPenalty penalty, Shard range) {
        if (params.dataType() != DataType.FLOAT) {
            throw new IllegalArgumentException("the CO2 outer step runs on float32 parameters, got "
                    + params.dataType());
        }
        if (range.to() > params.length()) {
            throw new IllegalArgumentException("range " + range + " exceeds the " + params.length() + " parameters");
        }
        if (range.length() * Float.BYTES > NativeMemory.MAX_VIEW_BYTES) {
            throw new IllegalArgumentException("range " + range + " is over one view (" + NativeMemory.MAX_VIEW_BYTES
                    + " bytes); split it over several outer steps");
        }
        this.params = params;
        this.config = config;
        this.penalty = penalty;
        this.from = range.from();
        this.length = (int) range.length();
        boolean empty = length == 0;
        this.xPrevArray = empty ? null : Nd4j.zeros(DataType.FLOAT, length);
        this.xArray = empty ? null : Nd4j.zeros(DataType.FLOAT, length);
        this.mArray = empty ? null : Nd4j.zeros(DataType.FLOAT, length);
        this.live = empty ? null : NativeMemory.unsafe(params, from, range.to());
        this.xPrev = empty ? null : NativeMemory.unsafe(xPrevArray, 0, length);
        this.x = empty ? null : NativeMemory.unsafe(xArray, 0, length);
        this.m = empty ? null : NativeMemory.unsafe(mArray, 0, length);

        List<ParamSpan> owned = new ArrayList<>();
        List<int[]> bounds = new ArrayList<>();
        long covered = 0;
        for (ParamSpan span : spans) {
            long lo = Math.max(range.from(), span.offset());
            long hi = Math.min(range.to(), span.offset() + span.numel());
            if (lo < hi) {
                owned.add(span);
                bounds.add(new int[] {(int) (lo - from), (int) (hi - from)});
                covered += hi - lo;
            }
        }
        if (covered != length) {
            throw new IllegalArgumentException("the spans cover " + covered + " of the " + length
                    + " elements of range " + range + "; each element must be in exactly one span");
        }
        this.pieceSpan = owned.toArray(new ParamSpan[0]);
        this.pieceLo = new int[pieceSpan.length];
        this.pieceHi = new int[pieceSpan.length];
        for (int p = 0; p < pieceSpan.length; p++) {
            pieceLo[p] = bounds.get(p)[0];
            pieceHi[p] = bounds.get(p)[1];
        }
        this.pieceLambda = new float[pieceSpan.length];
    }

    public Co2Config config() {
        return config;
    }

    /** The owned range {@code [from, to)} of the flat parameters. */
    public Shard range() {
        return new Shard(from, from + length);
    }

    /** Round 0's start: {@code x = x_prev = x_0} from the live params (every rank's are identical); m = 0. */
    public void begin() {
        if (length > 0) {
            x.putBytes(0, live, 0, length * Float.BYTES);
            xPrev.putBytes(0, live, 0, length * Float.BYTES);
            m.setMemory(0, length * Float.BYTES, (byte) 0);
        }
        begun = true;
    }

    /** Round 0's step 3: no average is pending yet, so {@code x_1 = x_0}; {@code x_prev} becomes {@code x_0}. */
    public void skip() {
        checkBegun();
        if (length > 0) {
            xPrev.putBytes(0, x, 0, length * Float.BYTES);
        }
    }

    /**
     * Step 3 of round {@code t >= 1}: the update above from {@code averagedY = ybar_{t-1}}, the finished all-reduce
     * mean of the previous round's local results for this range (byte {@code 4k} is element {@code from + k},
     * native order). Every rank owning the range calls it with the same average and gets the same bits.
     */
    public void apply(DirectBuffer averagedY) {
        update(averagedY, Input.STALE_AVERAGE);
    }

    /**
     * As {@link #apply}, from the mean outer delta {@code x_{t-1} - ybar_{t-1}} itself (what a compressed
     * reduction delivers: each rank sent {@code x_{t-1} - y}, and the decoded sum was divided by the ranks), so the
     * difference is not rounded a second time by forming {@code ybar} first.
     */
    public void applyDelta(DirectBuffer meanDelta) {
        update(meanDelta, Input.STALE_DELTA);
    }

    /**
     * The update without staleness: {@code Delta = (x_t - ybar_t) / lambda} from this round's own average
     * (the gap is zero). §6 oracle 1: with {@code beta = 0, alpha = 1, lambda = 1} it gives Local SGD,
     * {@code x_{t+1} = ybar_t} (exactly when {@code x_t - ybar_t} is exact in float32, e.g. within a factor of 2).
     */
    public void applySynchronous(DirectBuffer averagedY) {
        update(averagedY, Input.FRESH_AVERAGE);
    }

    /** What a round's step 3 is given: an average ybar and which x it is measured from, or the mean delta. */
    private enum Input {
        STALE_AVERAGE, FRESH_AVERAGE, STALE_DELTA
    }

    /** Writes the outer parameters {@code x} ({@code x_{t+1}} after step 3, where the next round starts) to params. */
    public void writeOuter() {
        checkBegun();
        if (length > 0) {
            live.putBytes(0, x, 0, length * Float.BYTES);
        }
    }

    /** The outer parameters {@code x} of the range (byte {@code 4k}: element {@code from + k}), read-only by contract. */
    public DirectBuffer current() {
        checkBegun();
        return x;
    }

    /** Bytes of outer state this rank allocated: x_prev, x and m for its range. */
    public long stateBytes() {
        return 3L * length * Float.BYTES;
    }

    /**
     * {@code co2.x_prev}, {@code co2.x}, {@code co2.outer_momentum}: elements [from, to) of flat-buffer-shaped
     * state, views of the live state, so a checkpoint taken mid-round (between the all-reduce's launch and step 3)
     * holds everything the next step reads besides the pending average. Empty when the range is.
     */
    public Map<String, StateSlice> state() {
        Map<String, StateSlice> state = new LinkedHashMap<>();
        if (length > 0) {
            long[] full = {params.length()};
            state.put("co2.x_prev", new StateSlice(xPrevArray, full, from));
            state.put("co2.x", new StateSlice(xArray, full.clone(), from));
            state.put("co2.outer_momentum", new StateSlice(mArray, full.clone(), from));
        }
        return state;
    }

    private void update(DirectBuffer averagedY, Input input) {
        checkBegun();
        if (length == 0) {
            return;
        }
        if (averagedY.capacity() < length * Float.BYTES) {
            throw new IllegalArgumentException("the average holds " + averagedY.capacity() + " bytes, the range "
                    + length * Float.BYTES);
        }
        boolean fresh = input == Input.FRESH_AVERAGE;
        boolean givenDelta = input == Input.STALE_DELTA;
        UnsafeBuffer reference = fresh ? x : xPrev;
        for (int p = 0; p < pieceSpan.length; p++) {
            double lambda;
            if (penalty.usesNorms()) {
                double gapSq = 0; // ||x_t - reference||^2: zero when fresh
                double deltaSq = 0; // ||reference - ybar||^2
                for (int k = pieceLo[p]; k < pieceHi[p]; k++) {
                    int o = k << 2;
                    double r = reference.getFloat(o);
                    double g = x.getFloat(o) - r;
                    double d = givenDelta ? averagedY.getFloat(o) : r - averagedY.getFloat(o);
                    gapSq += g * g;
                    deltaSq += d * d;
                }
                lambda = penalty.lambda(pieceSpan[p], Math.sqrt(gapSq), Math.sqrt(deltaSq));
            } else {
                lambda = penalty.lambda(pieceSpan[p], 0, 0);
            }
            float lambdaF = (float) lambda;
            if (!(lambdaF > 0) || Float.isInfinite(lambdaF)) {
                throw new IllegalStateException("the gap penalty of " + pieceSpan[p].name() + " is " + lambda
                        + "; it must be positive and finite");
            }
            pieceLambda[p] = lambdaF;
        }
        this.averaged = averagedY;
        this.input = input;
        try {
            KernelThreads.forLongRange(length, body);
        } finally {
            this.averaged = null;
        }
    }

    /** Elements [partFrom, partTo) of the range, span by span: the equations of the class comment in float32. */
    private void updatePart(int part, long partFrom, long partTo) {
        float beta = (float) config.outerMomentum();
        float alpha = (float) config.outerLr();
        float phi = roundedDown(config.clipThreshold());
        boolean clip = config.clip();
        DirectBuffer ybar = averaged;
        boolean givenDelta = input == Input.STALE_DELTA;
        UnsafeBuffer reference = input == Input.FRESH_AVERAGE ? x : xPrev;
        // Every buffer holds the range's `length` floats: checked once here, not per element.
        Object yBase = ybar.byteArray();
        Object refBase = reference.byteArray();
        Object xBase = x.byteArray();
        Object mBase = m.byteArray();
        Object prevBase = xPrev.byteArray();
        long yAt = FloatRun.locate(ybar, 0, length);
        long refAt = FloatRun.locate(reference, 0, length);
        long xAt = FloatRun.locate(x, 0, length);
        long mAt = FloatRun.locate(m, 0, length);
        long prevAt = FloatRun.locate(xPrev, 0, length);
        for (int p = 0; p < pieceSpan.length; p++) {
            int lo = (int) Math.max(partFrom, pieceLo[p]);
            int hi = (int) Math.min(partTo, pieceHi[p]);
            float lambda = pieceLambda[p];
            for (int k = lo; k < hi; k++) {
                float xt = FloatRun.get(xBase, xAt, k);
                float diff = givenDelta ? FloatRun.get(yBase, yAt, k)
                        : FloatRun.get(refBase, refAt, k) - FloatRun.get(yBase, yAt, k);
                float delta = diff / lambda;
                float mk = beta * FloatRun.get(mBase, mAt, k) + delta;
                if (clip) {
                    mk = Math.max(-phi, Math.min(phi, mk));
                }
                FloatRun.put(mBase, mAt, k, mk);
                FloatRun.put(prevBase, prevAt, k, xt);
                FloatRun.put(xBase, xAt, k, xt - alpha * mk);
            }
        }
    }

    /** The largest float not above {@code v}, so that clamping to it keeps {@code |m| <= phi} exactly. */
    static float roundedDown(double v) {
        float f = (float) v;
        return f > v ? Math.nextDown(f) : f;
    }

    private void checkBegun() {
        if (!begun) {
            throw new IllegalStateException("begin() the CO2 outer step before its first round");
        }
    }
}
