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
 */
public final class LowRankReduction implements BucketReduction {

    private final List<BucketLayer> layers;
    private final PowerSgd[] factors;        // per layer; null: sent raw
    private final int[] pIndex;              // per low-rank layer, its P in ps
    private final int[] qIndex;              // per low-rank layer, its Q in qsAndRaw; per raw layer, its values
    private final int[] residualIndex;
    private final UnsafeBuffer ps;
    private final UnsafeBuffer qsAndRaw;
    private final UnsafeBuffer residual;
    private final int members;

    /** {@code ranks[l]}: layer l's rank, 0 to send it raw; every member passes the same. */
    public LowRankReduction(List<BucketLayer> layers, int[] ranks, int members, long seed) {
        this.layers = List.copyOf(layers);
        this.members = members;
        this.factors = new PowerSgd[layers.size()];
        this.pIndex = new int[layers.size()];
        this.qIndex = new int[layers.size()];
        this.residualIndex = new int[layers.size()];
        int p = 0;
        int q = 0;
        int r = 0;
        for (int l = 0; l < layers.size(); l++) {
            BucketLayer layer = layers.get(l);
            if (ranks[l] > 0) {
                factors[l] = new PowerSgd(layer.rows(), layer.cols(), ranks[l], Seeds.of(seed, 0, l, 0));
                pIndex[l] = p;
                qIndex[l] = q;
                residualIndex[l] = r;
                p += layer.rows() * factors[l].rank();
                q += layer.cols() * factors[l].rank();
                r += layer.n();
            } else {
                qIndex[l] = q;
                q += layer.n();
                residualIndex[l] = -1;
            }
        }
        this.ps = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(4, 4 * p)));
        this.qsAndRaw = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * q));
        this.residual = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * r));
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
