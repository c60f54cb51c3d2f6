package dev.tessera.comm.compress;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Sums one gradient bucket over a group in PowerSGD's low-rank form (Vogels et al. 2019; ALGORITHMS.md 4): each
 * member takes {@code M = g + e} per matrix, computes {@code P = M Q} with its layer's warm-started Q, and the group
 * all-reduces every P of the bucket at once; each member orthonormalises the (identical) sum, computes
 * {@code Q = M^T P}, and a second all-reduce sums the Qs, together with the raw layers (vectors and small tensors),
 * which travel whole. The bucket then holds {@code P Q^T}, the rank-r approximation of the sum; each member keeps
 * {@code e = M - P Q^T / N}, so the members' residuals add up to what the sum lost, and the summed Q warm-starts the
 * next round.
 *
 * <p>L-GreCo ({@link LGreCoSelection} with {@link PowerSgdCandidates}) sees each low-rank layer's {@code M} through
 * the {@link LayerObserver} before P is computed, and changes ranks between rounds with {@link #useRank}, on every
 * member at the same round boundary. The residuals stay, as they live in gradient space; P and Q are laid out again
 * in buffers that only grow, whose views carry exactly the current ranks' factors.
 */
public final class LowRankReduction implements BucketReduction {

    private final List<BucketLayer> layers;
    private final PowerSgd[] factors;        // per layer; null: sent raw
    private final long[] seeds;              // per low-rank layer, its Q's seed (the first Q, and columns a rank adds)
    private final int[] pIndex;              // per low-rank layer, its P in ps
    private final int[] qIndex;              // per low-rank layer, its Q in qsAndRaw; per raw layer, its values
    private final int[] residualIndex;
    private UnsafeBuffer psStorage = new UnsafeBuffer(0, 0);
    private UnsafeBuffer qsStorage = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer ps = new UnsafeBuffer(0, 0);       // the current ranks' part of psStorage
    private final UnsafeBuffer qsAndRaw = new UnsafeBuffer(0, 0); // and of qsStorage: what the all-reduces carry
    private final UnsafeBuffer residual;
    private final int members;
    private final LayerObserver observer;

    /** {@code ranks[l]}: layer l's rank, 0 to send it raw; every member passes the same. */
    public LowRankReduction(List<BucketLayer> layers, int[] ranks, int members, long seed) {
        this(layers, ranks, members, seed, LayerObserver.NONE);
    }

    /** As above, with {@code observer} shown each low-rank layer's {@code M = g + e} before P is computed. */
    public LowRankReduction(List<BucketLayer> layers, int[] ranks, int members, long seed, LayerObserver observer) {
        if (ranks.length != layers.size()) {
            throw new IllegalArgumentException(ranks.length + " ranks for " + layers.size() + " layers");
        }
        this.layers = List.copyOf(layers);
        this.members = members;
        this.observer = observer;
        this.factors = new PowerSgd[layers.size()];
        this.seeds = new long[layers.size()];
        this.pIndex = new int[layers.size()];
        this.qIndex = new int[layers.size()];
        this.residualIndex = new int[layers.size()];
        int r = 0;
        for (int l = 0; l < layers.size(); l++) {
            BucketLayer layer = layers.get(l);
            if (ranks[l] > 0) {
                seeds[l] = Seeds.of(seed, 0, l, 0);
                factors[l] = new PowerSgd(layer.rows(), layer.cols(), ranks[l], seeds[l]);
                residualIndex[l] = r;
                r += layer.n();
            } else {
                residualIndex[l] = -1;
            }
        }
        this.residual = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * r));
        layOut();
    }

    /** Layer {@code l}'s rank now (0: sent raw). */
    public int rank(int l) {
        return factors[l] == null ? 0 : factors[l].rank();
    }

    /**
     * Layer {@code l} (low-rank) runs at {@code rank}, capped at its shape, from the next reduction on. Every member
     * must call it at the same round boundary with the same rank: dropping keeps Q's first columns, growing appends
     * columns drawn from the layer's seed and re-orthonormalises ({@link PowerSgd#resize}), so the members' Qs stay
     * the same bits. Allocates only when the factors outgrow every layout before.
     */
    public void useRank(int l, int rank) {
        if (factors[l] == null) {
            throw new IllegalArgumentException("layer '" + layers.get(l).name() + "' is sent raw, it has no rank");
        }
        factors[l].resize(rank, seeds[l]);
        layOut();
    }

    /** Places every P in ps and every Q and raw layer in qsAndRaw, in layer order, growing their storage if needed. */
    private void layOut() {
        int p = 0;
        int q = 0;
        for (int l = 0; l < layers.size(); l++) {
            BucketLayer layer = layers.get(l);
            qIndex[l] = q;
            if (factors[l] != null) {
                pIndex[l] = p;
                p += layer.rows() * factors[l].rank();
                q += layer.cols() * factors[l].rank();
            } else {
                q += layer.n();
            }
        }
        int psBytes = Math.max(4, 4 * p);
        if (psStorage.capacity() < psBytes) {
            psStorage = new UnsafeBuffer(ByteBuffer.allocateDirect(psBytes));
        }
        if (qsStorage.capacity() < 4 * q) {
            qsStorage = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * q));
        }
        ps.wrap(psStorage, 0, psBytes);
        qsAndRaw.wrap(qsStorage, 0, 4 * q);
    }

    @Override
    public void reduce(ProcessGroup group, MutableDirectBuffer bucket, long round) {
        boolean anyLowRank = false;
        for (int l = 0; l < layers.size(); l++) {
            BucketLayer layer = layers.get(l);
            if (factors[l] == null) {
                qsAndRaw.putBytes(4 * qIndex[l], bucket, 4 * layer.index(), 4 * layer.n());
                continue;
            }
            anyLowRank = true;
            ErrorFeedback.addResidual(bucket, layer.index(), residual, residualIndex[l], layer.n());
            observer.beforeEncode(l, bucket, layer.index(), layer.n());
            factors[l].computeP(bucket, layer.index(), ps, pIndex[l]);
        }
        if (anyLowRank) {
            group.allReduce(ps, DType.FLOAT32, ReduceOp.SUM);
        }
        for (int l = 0; l < layers.size(); l++) {
            if (factors[l] != null) {
                BucketLayer layer = layers.get(l);
                PowerSgd.orthonormalize(ps, pIndex[l], layer.rows(), factors[l].rank());
                factors[l].computeQ(bucket, layer.index(), ps, pIndex[l]);
                qsAndRaw.putBytes(4 * qIndex[l], factors[l].q(), 0, 4 * layer.cols() * factors[l].rank());
            }
        }
        group.allReduce(qsAndRaw, DType.FLOAT32, ReduceOp.SUM);
        float share = -1f / members;
        for (int l = 0; l < layers.size(); l++) {
            BucketLayer layer = layers.get(l);
            if (factors[l] == null) {
                bucket.putBytes(4 * layer.index(), qsAndRaw, 4 * qIndex[l], 4 * layer.n());
                continue;
            }
            factors[l].q().putBytes(0, qsAndRaw, 4 * qIndex[l], 4 * layer.cols() * factors[l].rank());
            residual.putBytes(4 * residualIndex[l], bucket, 4 * layer.index(), 4 * layer.n());
            factors[l].decompressAdd(ps, pIndex[l], qsAndRaw, qIndex[l], share, residual, residualIndex[l]);
            factors[l].decompressInto(ps, pIndex[l], qsAndRaw, qIndex[l], bucket, layer.index());
        }
    }

    @Override
    public Map<String, MutableDirectBuffer> state() {
        Map<String, MutableDirectBuffer> state = new LinkedHashMap<>();
        state.put("residual", residual);
        for (int l = 0; l < factors.length; l++) {
            if (factors[l] != null) {
                state.put("q." + l, factors[l].q());
            }
        }
        return state;
    }
}
