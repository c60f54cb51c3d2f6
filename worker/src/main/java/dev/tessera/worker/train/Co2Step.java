package dev.tessera.worker.train;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.CommException;
import dev.tessera.comm.DType;
import dev.tessera.comm.FloatRun;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.optimizers.co2.Co2OuterStep;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.model.LossParts;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.GradientCodec;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * CO2's step (ALGORITHMS.md §6): a local step of this rank's inner optimizer on its own slice of the batch, with
 * no gradient reduction (the model's gradient sync must be {@code GradientSync.NONE}) and the loss scaled as the
 * slice's own mean. After local step {@code tau} of round {@code t} (steps {@code t tau + 1 .. (t + 1) tau}) the
 * live parameters {@code y_t} are copied into a send buffer and averaged over the data-parallel group by a
 * non-blocking all-reduce; the round's outer step then waits for the previous round's average (round 0: nothing
 * to wait for), applies it ({@link Co2OuterStep#apply}) and writes the outer parameters {@code x_{t+1}} into the live
 * parameters, where round {@code t + 1} starts. So each average is launched after local step {@code tau} of its
 * round and consumed after local step {@code tau} of the next: it overlaps a whole round of compute. Two send
 * buffers alternate, one per round in flight.
 *
 * <p>The last step of the run ends a round even when it is not a multiple of {@code tau}, and flushes: it waits
 * for the last average as well and applies it, so every rank ends with the same outer parameters (for the final
 * evaluation and checkpoint). Between round ends each rank holds its own local parameters; evaluations and
 * checkpoints in between see the outer parameters ({@link #withOuterParameters}). The inner optimizer's
 * state stays local. {@code group} null: one replica, whose average is its own parameters.
 *
 * <p><b>Sharded outer state</b> ({@code co2.shard_outer_state}, ALGORITHMS.md §6 "Memory"): rank {@code r} of
 * {@code N} owns the elements {@link #bounds}{@code [r] .. [r + 1]} and its outer step holds x_prev, x and m for
 * those only. The round's all-reduce becomes an in-place reduce-scatter (AVG) that leaves each owner its range of
 * the average; when it is awaited (the same place the all-reduce is), the owner applies its outer step, writes its
 * range of {@code x_{t+1}} into the live parameters, and every rank all-gathers the ranges (on a channel of its
 * own, so that it does not queue behind the reduce-scatter just launched). The all-gather is on the critical path
 * (the next round starts from {@code x_{t+1}}), so its time counts in the step's comm wait. The update of an
 * element is the unsharded one's; the average's bits can differ from the all-reduce's (another summation order,
 * which for two ranks is the same sum), so a sharded run matches an unsharded one closely, and itself bit for bit.
 *
 * <p><b>Compressed</b> ({@code compression.method} with CO2): each rank sends its outer delta {@code x_t - y} (from
 * its own start point: {@code x_t - v} with kept progress) through a {@link GradientCodec} over the whole parameter
 * buffer, as one bucket, with the codec's error feedback carrying what a round's encoding left out into the next
 * round's. The codec leaves the decoded sum in the send buffer; the wait divides it by the ranks, and the outer step
 * takes the mean delta as it is ({@link Co2OuterStep#applyDelta}). The wait and the overlap are the uncompressed
 * path's: the encoding runs on the group's background thread.
 */
public final class Co2Step implements TrainingStep {

    private final Transformer model;
    private final Optimizer optimizer;
    private final ProcessGroup group;
    private final Co2OuterStep outer;
    private final long lastStep;
    private final double gradClip;
    private final int bytes;
    private final UnsafeBuffer live;
    private final UnsafeBuffer[] send = new UnsafeBuffer[2];
    private CollectiveHandle pending; // the previous round's average, in flight; null when none was launched
    private UnsafeBuffer pendingBuffer;
    private long pendingRound = -1;
    private int next; // the send buffer the next launch fills
    private UnsafeBuffer aside; // the live parameters while a checkpoint writes the outer ones; made by the first
    private final UnsafeBuffer carry; // keep_local_progress: this rank's progress of the last round; else null
    private final ProcessGroup gather; // sharded: the channel the outer parameters are all-gathered on; else null
    private final long[] bounds; // sharded: every rank's range, N + 1 element offsets; else null
    private final UnsafeBuffer[] owned = new UnsafeBuffer[2]; // the owned range of each send buffer, made once
    private int pendingIndex; // the send buffer pendingBuffer is
    private final GradientCodec codec; // compressed: sends outer deltas, and its reduction sums them; else null

    /**
     * @param group    the data-parallel group to average over (a channel of its own, so that the per-step loss
     *                 sums do not queue behind the average); null for one replica
     * @param outer    the outer step bound to {@code model}'s flat parameters: whole, or sharded this rank's
     *                 range {@code bounds[group.rank()] .. bounds[group.rank() + 1]}
     * @param gather   sharded: a channel over the same ranks as {@code group} for the all-gather of the outer
     *                 parameters; null when not sharded
     * @param bounds   sharded: {@link #bounds} of the parameters over {@code group}; null when not sharded
     * @param lastStep the run's last step, where the final round is flushed
     * @param keepLocalProgress a round starts from the outer parameters plus this rank's own progress of the
     *                 round before (whose average is still in flight), not from the outer parameters alone
     * @param codec    compressed: planned over {@code group} with the parameters as one bucket, it reduces the
     *                 outer deltas; null sends the parameters whole (all-reduce, or sharded reduce-scatter)
     */
    public Co2Step(Transformer model, Optimizer optimizer, ProcessGroup group, Co2OuterStep outer, long lastStep,
                   double gradClip, boolean keepLocalProgress, ProcessGroup gather, long[] bounds,
                   GradientCodec codec) {
        INDArray params = model.parameters().params();
        if (params.dataType() != DataType.FLOAT) {
            throw new IllegalArgumentException("CO2 averages float32 parameters, got " + params.dataType());
        }
        long numel = params.length();
        if (bounds == null) {
            if (outer.range().from() != 0 || outer.range().to() != numel) {
                throw new IllegalArgumentException("CO2's outer step must own all " + numel + " parameters, it owns "
                        + outer.range());
            }
        } else {
            if (group == null || gather == null || !Arrays.equals(bounds, bounds(numel, group.size()))) {
                throw new IllegalArgumentException("a sharded CO2 outer state needs a group, a gather channel and"
                        + " the group's bounds of the " + numel + " parameters");
            }
            int rank = group.rank();
            if (outer.range().from() != bounds[rank] || outer.range().to() != bounds[rank + 1]) {
                throw new IllegalArgumentException("rank " + rank + "'s CO2 outer step owns " + outer.range()
                        + ", its share is [" + bounds[rank] + ", " + bounds[rank + 1] + ")");
            }
            if (keepLocalProgress) { // the validator refuses it; the carry needs the whole x_t
                throw new IllegalArgumentException("co2.keep_local_progress needs the whole outer state");
            }
        }
        if (codec != null && (group == null || bounds != null)) { // the validator refuses sharded with compression
            throw new IllegalArgumentException("a compressed CO2 average needs a group and the whole outer state");
        }
        if (numel * Float.BYTES > NativeMemory.MAX_VIEW_BYTES) {
            throw new IllegalArgumentException("CO2 averages the parameters as one buffer of at most "
                    + NativeMemory.MAX_VIEW_BYTES + " bytes; this model has " + numel * Float.BYTES);
        }
        this.model = model;
        this.optimizer = optimizer;
        this.group = group;
        this.outer = outer;
        this.lastStep = lastStep;
        this.gradClip = gradClip;
        this.bytes = (int) (numel * Float.BYTES);
        this.live = NativeMemory.unsafe(params, 0, numel);
        this.gather = gather;
        this.bounds = bounds == null ? null : bounds.clone();
        this.codec = codec;
        int ownedFrom = (int) (outer.range().from() * Float.BYTES);
        int ownedBytes = (int) (outer.range().length() * Float.BYTES);
        for (int i = 0; i < send.length; i++) {
            send[i] = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(bytes, 1)), 0, bytes);
            owned[i] = new UnsafeBuffer(send[i], ownedFrom, ownedBytes);
        }
        this.carry = keepLocalProgress ? new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(bytes, 1)), 0, bytes)
                : null; // direct buffers start zeroed: round 0 carries nothing
        outer.begin(); // x_0: every replica initialised its parameters from the same seed
    }

    public int tau() {
        return outer.config().tau();
    }

    /**
     * The sharded outer state's cut of {@code numel} parameters over {@code ranks} data-parallel ranks: rank
     * {@code r} owns elements {@code [b[r], b[r + 1])}, {@code b[r] = floor(numel r / ranks)}, even by element
     * count whatever the tensors (a tensor may be cut between ranks; only a gap-scaled penalty then differs from
     * the unsharded step's, see {@code GapPenalty}). Every rank computes the same bounds from the same two numbers.
     */
    public static long[] bounds(long numel, int ranks) {
        long[] b = new long[ranks + 1];
        for (int r = 0; r <= ranks; r++) {
            b[r] = numel * r / ranks; // numel is at most one view of floats: no overflow
        }
        return b;
    }

    /** Whether the outer state is sharded over the data-parallel ranks. */
    public boolean sharded() {
        return bounds != null;
    }

    @Override
    public Outcome run(long step, int[] inputs, int[] targets, double lr) {
        model.beginStep(step);
        LossParts loss = model.forwardBackward(inputs, targets, 1.0); // this replica's own mean: a local step
        double gradNorm = Math.sqrt(GradNorm.sumOfSquares(model.parameters().grads()));
        optimizer.step(step, lr, GradNorm.clipScale(gradNorm, gradClip));
        long waited = 0;
        boolean last = step == lastStep;
        if (step % tau() == 0 || last) {
            long round = (step - 1) / tau();
            UnsafeBuffer buffer = send[next];
            next ^= 1;
            if (codec != null) {
                sendDelta(buffer);
            } else if (carry == null) {
                buffer.putBytes(0, live, 0, bytes); // y_t, before the outer step overwrites the live parameters
            } else {
                sendProgress(buffer);
            }
            // From here the all-reduce owns the buffer until it is awaited: nothing reads or writes it meanwhile.
            // Sharded: only the owner's range ends averaged; the rest of the buffer is the ring's scratch.
            CollectiveHandle launched = group == null ? null : codec != null
                    ? codec.reduceAsync(group, 0, buffer, DType.FLOAT32)
                    : bounds != null ? group.reduceScatterInPlaceAsync(buffer, bounds, DType.FLOAT32, ReduceOp.AVG)
                    : group.allReduceAsync(buffer, DType.FLOAT32, ReduceOp.AVG);
            waited += finishPrevious();
            pending = launched;
            pendingBuffer = buffer;
            pendingIndex = next ^ 1;
            pendingRound = round;
            if (last) { // flush: the last round's average too, so that every rank ends on the same parameters
                waited += finishPrevious();
            }
            outer.writeOuter();
            if (bounds != null) { // this rank's range of x_{t+1} is in; the gather brings the others' ranges
                waited += gatherOuter();
            }
            if (carry != null && !last) {
                add(live, carry);
            }
        }
        return new Outcome(loss, gradNorm, waited, model.moeStats());
    }

    /**
     * Waits for the average in flight, if one is, without applying it: a checkpoint then holds the same bits as
     * the step that applies it will read ({@link #pendingAverage}). Only the wait moves; the values do not.
     */
    public void settle() {
        if (pending != null) {
            await();
            pending = null;
        }
    }

    /**
     * The finished average that the next round end applies, over the outer step's range (sharded: this rank's
     * range only, the rest of the buffer is not averaged), or null (none launched, or the last flushed).
     * Compressed, it is the mean outer delta instead ({@link #averagesDeltas}).
     */
    public DirectBuffer pendingAverage() {
        if (pending != null) {
            throw new IllegalStateException("settle() the average in flight first");
        }
        return pendingBuffer == null ? null : owned[pendingIndex];
    }

    /** Whether {@link #pendingAverage} is a mean outer delta (compressed) rather than an average of parameters. */
    public boolean averagesDeltas() {
        return codec != null;
    }

    /** The round whose average {@link #pendingAverage} is; -1 when none is pending. */
    public long pendingRound() {
        return pendingBuffer == null ? -1 : pendingRound;
    }

    public Co2OuterStep outer() {
        return outer;
    }

    /**
     * A resumed run's pending average: the average of {@code round}, finished, as {@link #pendingAverage} held it
     * when the checkpoint was written; the next round end applies it. The outer state is filled through
     * {@link Co2OuterStep#state()}.
     */
    public void resumePending(long round, DirectBuffer average) {
        UnsafeBuffer range = owned[next];
        if (average.capacity() != range.capacity()) {
            throw new IllegalArgumentException("the pending average has " + average.capacity() + " bytes, the"
                    + " outer step's range " + range.capacity());
        }
        range.putBytes(0, average, 0, range.capacity());
        pending = null;
        pendingBuffer = send[next];
        pendingIndex = next;
        next ^= 1;
        pendingRound = round;
    }

    /**
     * Runs {@code write} with the outer parameters {@code x_t} in the live buffer, where a round started (the
     * model a checkpoint exports: the last one every rank agreed on), and puts this rank's local parameters back.
     * Sharded, the ranks all-gather their ranges of {@code x_t} first: every rank must call it, at the same step.
     */
    public void withOuterParameters(Runnable write) {
        if (aside == null) {
            aside = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(bytes, 1)), 0, bytes);
        }
        aside.putBytes(0, live, 0, bytes);
        outer.writeOuter();
        try {
            if (bounds != null) {
                gatherOuter();
            }
            write.run();
        } finally {
            live.putBytes(0, aside, 0, bytes);
        }
    }

    /** Mid-round, every rank evaluates the outer parameters; after the last step's flush they are the live ones. */
    @Override
    public void withEvaluatedParameters(Runnable evaluation) {
        withOuterParameters(evaluation);
    }

    /** This rank's progress of the last round, which its next rounds start from; null without keep_local_progress. */
    public UnsafeBuffer carry() {
        return carry;
    }

    /**
     * keep_local_progress at a round end: {@code v = y - c}, the point {@code x_t} plus this round's own progress
     * (what {@code y_t} would be had the round started at {@code x_t}), goes into {@code send}; the progress
     * {@code c = v - x_t} is kept, for the next rounds to start from while its average travels.
     */
    private void sendProgress(UnsafeBuffer send) {
        DirectBuffer x = outer.current(); // x_t: the outer step has not run yet this round end
        int n = bytes / Float.BYTES;
        Object liveBase = live.byteArray();
        Object carryBase = carry.byteArray();
        Object sendBase = send.byteArray();
        Object xBase = x.byteArray();
        long liveAt = FloatRun.locate(live, 0, n);
        long carryAt = FloatRun.locate(carry, 0, n);
        long sendAt = FloatRun.locate(send, 0, n);
        long xAt = FloatRun.locate(x, 0, n);
        for (int i = 0; i < n; i++) {
            float v = FloatRun.get(liveBase, liveAt, i) - FloatRun.get(carryBase, carryAt, i);
            FloatRun.put(sendBase, sendAt, i, v);
            FloatRun.put(carryBase, carryAt, i, v - FloatRun.get(xBase, xAt, i));
        }
    }

    /**
     * Compressed: the outer delta {@code d = x_t - v} of this round, where {@code v = y} (or, keeping progress,
     * {@code y - c}, whose new progress {@code c = v - x_t = -d} is kept as {@link #sendProgress} keeps it).
     */
    private void sendDelta(UnsafeBuffer send) {
        DirectBuffer x = outer.current(); // x_t: the outer step has not run yet this round end
        int n = bytes / Float.BYTES;
        Object liveBase = live.byteArray();
        Object sendBase = send.byteArray();
        Object xBase = x.byteArray();
        long liveAt = FloatRun.locate(live, 0, n);
        long sendAt = FloatRun.locate(send, 0, n);
        long xAt = FloatRun.locate(x, 0, n);
        if (carry == null) {
            for (int i = 0; i < n; i++) {
                FloatRun.put(sendBase, sendAt, i, FloatRun.get(xBase, xAt, i) - FloatRun.get(liveBase, liveAt, i));
            }
            return;
        }
        Object carryBase = carry.byteArray();
        long carryAt = FloatRun.locate(carry, 0, n);
        for (int i = 0; i < n; i++) {
            float v = FloatRun.get(liveBase, liveAt, i) - FloatRun.get(carryBase, carryAt, i);
            float xi = FloatRun.get(xBase, xAt, i);
            FloatRun.put(sendBase, sendAt, i, xi - v);
            FloatRun.put(carryBase, carryAt, i, v - xi);
        }
    }

    /** {@code into += b}, float32 elementwise over the parameters. */
    private void add(UnsafeBuffer into, DirectBuffer b) {
        int n = bytes / Float.BYTES;
        Object intoBase = into.byteArray();
        Object bBase = b.byteArray();
        long intoAt = FloatRun.locate(into, 0, n);
        long bAt = FloatRun.locate(b, 0, n);
        for (int i = 0; i < n; i++) {
            FloatRun.put(intoBase, intoAt, i, FloatRun.get(intoBase, intoAt, i) + FloatRun.get(bBase, bAt, i));
        }
    }

    /** Step 3 of the round: wait for the pending average and apply it (none pending: round 0's skip). */
    private long finishPrevious() {
        if (pendingBuffer == null) {
            outer.skip();
            return 0;
        }
        long start = System.nanoTime();
        if (pending != null) {
            await();
        }
        long waited = System.nanoTime() - start;
        if (codec != null) {
            outer.applyDelta(owned[pendingIndex]);
        } else {
            outer.apply(owned[pendingIndex]);
        }
        pending = null;
        pendingBuffer = null;
        return waited;
    }

    /** All ranks' ranges of the outer parameters into the live buffer (blocking, with the group's deadline). */
    private long gatherOuter() {
        long start = System.nanoTime();
        try {
            gather.allGatherInPlace(live, bounds, DType.FLOAT32);
        } catch (CommException e) {
            throw new CommException("CO2 outer parameter all-gather over " + gather.name() + ": " + e.getMessage(),
                    e.peerRank(), e);
        }
        return System.nanoTime() - start;
    }

    /** Waits for the average in flight; compressed, it then turns the decoded sum of deltas into their mean. */
    private void await() {
        try {
            pending.await();
        } catch (CommException e) {
            throw new CommException("CO2 parameter average of round " + pendingRound + " over "
                    + group.name() + ": " + e.getMessage(), e.peerRank(), e);
        }
        if (codec != null) {
            float ranks = group.size();
            int n = bytes / Float.BYTES;
            Object base = pendingBuffer.byteArray();
            long at = FloatRun.locate(pendingBuffer, 0, n);
            for (int i = 0; i < n; i++) {
                FloatRun.put(base, at, i, FloatRun.get(base, at, i) / ranks);
            }
        }
    }
}
