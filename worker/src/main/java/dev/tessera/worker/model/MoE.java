package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.KernelThreads;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * MoE FFN: router softmax over E experts (in double whatever the model's dtype), a {@link Gate} choosing each token's
 * experts and weights ({@code model.gate}: Mixtral's dropless top-k, Switch, GShard, or HyperRouter, whose router a
 * {@link HyperRouter} generates), out = sum over kept choices of w_j * expert_{e_j}(x); a dropped choice adds
 * nothing (the residual carries the token). Switch load-balancing loss
 * aux = E * sum_e f_e * P_e, f_e the gate's load fraction of e (a constant for the gradient), P_e the mean router
 * probability of e; router z-loss z = mean over tokens of logsumexp(logits)^2 (ST-MoE).
 *
 * <p>Expert compute is route -> dispatch (gather each expert's tokens into contiguous rows) -> expert gemms
 * -> combine (weighted scatter-add back). Between the gathers and the experts, a {@link TokenDispatch} takes the
 * rows to the experts' owners and back (expert parallelism; local by default), and the routing statistics are
 * summed over the replicas by a {@link ReplicaReducer}.
 */
public final class MoE {
    private final int tokens;
    private final int dim;
    private final int nExperts;
    private final int topK;           // the gate's choices per token
    private final Gate router;
    private final Routing routing;
    private final Linear gate;        // [E, C] the learned router, or null under a HyperRouter
    private final HyperRouter hyper;  // the generated router ({@code gate: hyper}), or null
    private final INDArray routerW;   // [E, C] whichever router this layer has
    private final INDArray routerDW;  // [E, C]
    private final ExpertShard held;   // the experts this rank holds (all of them unless expert-parallel)
    private final SwiGLU[] experts;   // [held.count()], local index i is global expert held.first() + i
    private final INDArray logits;    // [N, E]
    private final INDArray dLogits;   // [N, E]
    private final double[] probs;     // [N, E] router softmax, in double whatever the dtype
    private final int[] choice;       // [N, k] expert of each (token, slot)
    private final boolean[] kept;     // [N, k] whether the choice got a capacity slot
    private final double[] lse;       // [N] logsumexp of the router logits, for the z-loss
    private final double[] balance;   // [E] what counts towards f_e on this replica
    private final double[] weight;    // [N, k] the gate's weight of each (token, slot)
    private final double[] dWeight;   // [N, k]
    private final int[] count;        // [E] assignments per expert
    private final int[] start;        // [E + 1] first gathered row of each expert
    private final int[] rowToken;     // [N*k] token whose copy sits in gathered row r
    private final int[] rowSlot;      // [N*k] (token, slot) index of gathered row r
    private final int[] slotRow;      // [N*k] gathered row of (token, slot): the inverse of rowSlot
    private final INDArray xs;        // [N*k, C] gathered expert inputs
    private final INDArray ys;        // [N*k, C] expert outputs, unweighted
    private final INDArray dys;       // [N*k, C]
    private final INDArray dxs;       // [N*k, C]
    private final SwiGLU.Acts acts;   // [N*k, F_e]; null when the experts run arriving rows (expertActs)
    private final int expertDff;
    // The rows this rank's experts run, grouped by local expert ([R, C]; R rows in all). Alone they are the
    // gathered rows themselves; under expert parallelism they arrive from the expert group's ranks.
    private INDArray expertIn;
    private INDArray expertOut;
    private INDArray expertDOut;
    private INDArray expertDIn;
    private SwiGLU.Acts expertActs;   // [R, F_e]
    private final int[] localCount;   // [E_local] rows per held expert
    private final int[] localStart;   // [E_local + 1]
    private int capacity;             // the last forward's slots per expert
    private long sentBefore;          // the dispatch's totals at the last writeStats
    private long waitedBefore;
    private ReplicaReducer replicas = ReplicaReducer.LOCAL;
    private TokenDispatch tokenDispatch = TokenDispatch.LOCAL;
    private final TokenDispatch.ExpertStep expertForward = this::forwardExpert;
    private final TokenDispatch.ExpertStep expertBackward = this::backwardExpert;
    private final double[] pSum;         // [E] router probability summed over this replica's tokens
    private final double[] dp;           // [E] scratch of the router backward
    // [3E + 3] balance, probability sums, tokens, z sum, assignments asked per expert, kept: over replicas
    private final double[] routingStats;
    private double lastAux;
    private double lastZLoss;
    private int rows;                    // kept (token, slot) choices: the gathered rows
    private boolean training = true;
    private long routingSeed;
    private long step;
    private long firstSequence;          // this replica's first sequence of the global batch
    private int wholeSeq;                // tokens of a whole sequence
    private int[] positions;             // the positions of each sequence this replica holds (null: all of them)
    private final long layerKey;

    /** @param prefix e.g. {@code model.layers.1.block_sparse_moe} */
    public MoE(ParameterStore ps, String prefix, ModelConfig cfg, int tokens) {
        this(ps, prefix, cfg, tokens, Activations.own());
    }

    /** As above, its per-token buffers (routing, gathered rows, expert activations) from {@code activations}. */
    public MoE(ParameterStore ps, String prefix, ModelConfig cfg, int tokens, Activations activations) {
        this(ps, prefix, cfg, tokens, activations, ExpertShard.all(cfg.nExperts()));
    }

    /** Holding only the experts of {@code held} (expert parallelism: the rest run on other ranks). */
    public MoE(ParameterStore ps, String prefix, ModelConfig cfg, int tokens, Activations activations,
               ExpertShard held) {
        DataType dt = ps.dataType();
        this.routingStats = new double[3 * cfg.nExperts() + 3];
        this.pSum = new double[cfg.nExperts()];
        this.dp = new double[cfg.nExperts()];
        this.tokens = tokens;
        this.dim = cfg.dModel();
        this.nExperts = cfg.nExperts();
        if (cfg.topK() < 1 || cfg.topK() > nExperts) {
            throw new IllegalArgumentException("top_k must be in [1, n_experts], got " + cfg.topK() + " of " + nExperts);
        }
        this.routing = cfg.routing();
        this.router = Gate.of(routing, cfg.topK(), nExperts);
        this.topK = router.slots();
        this.layerKey = prefix.hashCode();
        if (routing.hyper()) {
            this.gate = null;
            this.hyper = new HyperRouter(ps, prefix + ".hyper.embedding", dim, nExperts, routing.hyperSize(), layerKey);
            this.routerW = hyper.weight;
            this.routerDW = hyper.dWeight;
        } else {
            this.gate = new Linear(ps, prefix + ".gate.weight");
            this.hyper = null;
            this.routerW = gate.w;
            this.routerDW = gate.dw;
        }
        if (held.end() > nExperts) {
            throw new IllegalArgumentException("experts " + held + " outside the layer's " + nExperts);
        }
        this.held = held;
        this.experts = new SwiGLU[held.count()];
        for (int i = 0; i < experts.length; i++) {
            String p = prefix + ".experts." + (held.first() + i);
            experts[i] = SwiGLU.stacked(ps, p + ".w1.weight", p + ".w3.weight", p + ".w2.weight");
        }
        this.localCount = new int[held.count()];
        this.localStart = new int[held.count() + 1];
        int maxRows = Math.multiplyExact(tokens, topK);
        logits = activations.array(dt, tokens, nExperts);
        dLogits = activations.array(dt, tokens, nExperts);
        probs = activations.doubles(Math.multiplyExact(tokens, nExperts));
        choice = activations.ints(maxRows);
        kept = new boolean[maxRows];
        lse = activations.doubles(tokens);
        balance = new double[nExperts];
        weight = activations.doubles(maxRows);
        dWeight = activations.doubles(maxRows);
        count = new int[nExperts];
        start = new int[nExperts + 1];
        rowToken = activations.ints(maxRows);
        rowSlot = activations.ints(maxRows);
        slotRow = activations.ints(maxRows);
        xs = activations.array(dt, maxRows, dim);
        ys = activations.array(dt, maxRows, dim);
        dys = activations.array(dt, maxRows, dim);
        dxs = activations.array(dt, maxRows, dim);
        expertDff = cfg.expertDFF();
        // A rank holding only some experts runs the rows that arrive for them, in buffers of their own.
        acts = held.count() == nExperts ? SwiGLU.Acts.allocate(dt, maxRows, expertDff, activations) : null;
        useExpertRows(xs, ys, dys, dxs, acts);
    }

    private void useExpertRows(INDArray in, INDArray out, INDArray dOut, INDArray dIn, SwiGLU.Acts expertActs) {
        this.expertIn = in;
        this.expertOut = out;
        this.expertDOut = dOut;
        this.expertDIn = dIn;
        this.expertActs = expertActs;
    }

    /**
     * Sums the routing statistics over the data-parallel replicas, so that the load-balancing loss and its
     * gradient are those of the global batch, as in a single process; local unless set.
     */
    public void useReplicaReducer(ReplicaReducer reducer) {
        this.replicas = reducer;
    }

    /** Training routes at {@code capacity_factor}, evaluation at {@code eval_capacity_factor}. */
    public void setTraining(boolean training) {
        this.training = training;
    }

    /** The seed of random routing (the job's). */
    public void useRoutingSeed(long seed) {
        this.routingSeed = seed;
        if (hyper != null) {
            hyper.draw(seed);
        }
    }

    /** The step whose tokens the next forward routes. */
    public void beginStep(long step) {
        this.step = step;
    }

    /**
     * Where this replica's tokens are in the global batch, so random routing draws per global token: local token n
     * is position {@code positions[n % positions.length]} of sequence {@code firstSequence + n / positions.length}
     * of {@code wholeSeq} tokens (sequence parallelism holds some positions of each sequence).
     */
    public void useTokenPlace(long firstSequence, int wholeSeq, int[] positions) {
        this.firstSequence = firstSequence;
        this.wholeSeq = wholeSeq;
        this.positions = positions.clone();
    }

    private long globalToken(int n) {
        if (positions == null) {
            return n;
        }
        return (firstSequence + n / positions.length) * wholeSeq + positions[n % positions.length];
    }

    /**
     * How the gathered rows reach their experts; all experts local unless set. A dispatch that moves rows gets
     * expert-side buffers of their own, sized for what arrives on average and grown when more does.
     */
    public void useTokenDispatch(TokenDispatch dispatch) {
        if (dispatch.movesRows() != (held.count() < nExperts)) {
            throw new IllegalArgumentException("a layer holding experts " + held + " of " + nExperts + " needs a"
                    + " dispatch that " + (held.count() < nExperts ? "moves rows to the others" : "keeps them here"));
        }
        this.tokenDispatch = dispatch;
        if (dispatch.movesRows()) {
            growExpertRows((int) xs.size(0));
        } else {
            useExpertRows(xs, ys, dys, dxs, acts);
        }
    }

    /**
     * The most rows one exchange of this layer can take to or from a rank of an expert group of {@code ranks}:
     * dropless, every token's choices arriving at one rank; with a capacity, every expert padded to it.
     */
    public int maxExchangeRows(int ranks) {
        long rows = 0;
        for (double factor : new double[] {routing.capacityFactor(), routing.evalCapacityFactor()}) {
            int slots = router.capacity(tokens, nExperts, factor);
            rows = Math.max(rows, slots < tokens ? (long) nExperts * slots : (long) ranks * tokens * topK);
        }
        return Math.toIntExact(rows);
    }

    /** The experts this layer holds. */
    public ExpertShard heldExperts() {
        return held;
    }

    /** New expert-side buffers of {@code rows} rows; the old ones' memory is returned at once, not at some GC. */
    private void growExpertRows(int rows) {
        DataType dt = xs.dataType();
        long f = expertDff;
        if (expertIn != null && expertIn != xs) {
            for (INDArray old : new INDArray[] {expertIn, expertOut, expertDOut, expertDIn, expertActs.h(),
                    expertActs.a()}) {
                old.close();
            }
        }
        Activations own = Activations.own();
        useExpertRows(own.array(dt, rows, dim), own.array(dt, rows, dim), own.array(dt, rows, dim),
                own.array(dt, rows, dim), SwiGLU.Acts.allocate(dt, rows, f, own));
    }

    public static void register(ParameterStore.Layout b, String prefix, ModelConfig cfg) {
        register(b, prefix, cfg, ExpertShard.all(cfg.nExperts()));
    }

    /** Declares the router and the experts of {@code held}, under their global names. */
    public static void register(ParameterStore.Layout b, String prefix, ModelConfig cfg, ExpertShard held) {
        if (cfg.routing().hyper()) {
            b.add(prefix + ".hyper.embedding", 1, cfg.dModel()); // the router is generated from it (HyperRouter)
        } else {
            b.add(prefix + ".gate.weight", cfg.nExperts(), cfg.dModel());
        }
        for (int e = held.first(); e < held.end(); e++) {
            String p = prefix + ".experts." + e;
            // w1 next to w3, so each expert runs them as one stacked gemm (SwiGLU.stacked).
            b.add(p + ".w1.weight", cfg.expertDFF(), cfg.dModel());
            b.add(p + ".w3.weight", cfg.expertDFF(), cfg.dModel());
            b.add(p + ".w2.weight", cfg.dModel(), cfg.expertDFF());
        }
    }

    /** x: [N, C]; out: [N, C] += MoE(x). Returns this layer's aux loss. */
    public double forward(INDArray x, INDArray out) {
        route(x);                                    // probs [N, E], choice and weight [N, k], aux
        dispatch(x);                                 // xs [N*k, C], grouped by expert
        int arriving = tokenDispatch.plan(count, capacity < tokens ? capacity : TokenDispatch.DROPLESS, localCount);
        if (arriving > expertIn.size(0)) {
            // Grown rarely (routers drift slowly), with room to spare, but never past what one exchange can bring.
            growExpertRows(Math.min(arriving + arriving / 4, maxExchangeRows(nExperts / held.count())));
        }
        localStart[0] = 0;
        for (int i = 0; i < experts.length; i++) {
            localStart[i + 1] = localStart[i] + localCount[i];
        }
        // xs -> expertIn [R, C], grouped by held expert; expertOut = expert_i(expertIn) on i's rows; -> ys [N*k, C]
        tokenDispatch.roundTrip(xs, expertIn, experts.length, expertForward, expertOut, ys);
        combine(out);                                // out [N, C] += sum_j w_j ys[row of (n, j)]
        return lastAux;
    }

    /** Held expert i's forward on its rows of expertIn, into expertOut. */
    private void forwardExpert(int i) {
        if (localCount[i] > 0) {
            experts[i].forward(Mem.rows(expertIn, localStart[i], localCount[i]),
                    expertActs.rows(localStart[i], localCount[i]),
                    Mem.rows(expertOut, localStart[i], localCount[i]), false);
        }
    }

    /** Held expert i's backward: its rows of expertDOut into expertDIn (and its weight gradients). */
    private void backwardExpert(int i) {
        if (localCount[i] > 0) {
            experts[i].backward(Mem.rows(expertIn, localStart[i], localCount[i]),
                    expertActs.rows(localStart[i], localCount[i]),
                    Mem.rows(expertDOut, localStart[i], localCount[i]),
                    Mem.rows(expertDIn, localStart[i], localCount[i]), false);
        }
    }

    /**
     * dOut: [N, C] -> dx: [N, C] (overwritten). {@code auxGrad} is dLoss/dAux (the aux coefficient).
     * x must be the last forward's input.
     */
    public void backward(INDArray x, INDArray dOut, INDArray dx, double auxGrad) {
        combineBackward(dOut);                       // dys [N*k, C], dWeight [N, k]
        // dys -> expertDOut in the forward's layout; expertDIn through expert_i; -> dxs [N*k, C]
        tokenDispatch.roundTrip(dys, expertDOut, experts.length, expertBackward, expertDIn, dxs);
        dispatchBackward(dx);                        // dx [N, C] = sum of its rows of dxs
        routerBackward(auxGrad);                     // dLogits [N, E]
        routerLinearBackward(x, dx);                 // dx += dLogits W_gate, dW_gate += dLogits^T x
        if (hyper != null) {                         // db_g = sum_n dLogits[n]; then on to the embedding
            Mem dl = new Mem(dLogits);
            for (int n = 0; n < tokens; n++) {
                for (int e = 0; e < nExperts; e++) {
                    hyper.dBias[e] += dl.get(n * nExperts + e);
                }
            }
            hyper.backward();
        }
    }

    public double lastAux() {
        return lastAux;
    }

    /** The last forward's router z-loss (over the global batch, like {@link #lastAux}). */
    public double lastZLoss() {
        return lastZLoss;
    }

    /** The fraction of (token, choice) assignments the last forward dropped, over the global batch. */
    public double lastDroppedFraction() {
        return 1.0 - routingStats[3 * nExperts + 2] / (routingStats[2 * nExperts] * topK);
    }

    /** The sum of the weights of token {@code n}'s kept choices in the last forward: what scales it through the layer. */
    double keptWeightOf(int n) {
        double sum = 0;
        for (int j = 0; j < topK; j++) {
            sum += kept[n * topK + j] ? weight[n * topK + j] : 0;
        }
        return sum;
    }

    /** How many of token {@code n}'s choices the last forward dropped. */
    int droppedChoicesOf(int n) {
        int dropped = 0;
        for (int j = 0; j < topK; j++) {
            dropped += kept[n * topK + j] ? 0 : 1;
        }
        return dropped;
    }

    /**
     * Writes the last step's {@link MoeStats} numbers of this layer at {@code at}: dropped fraction, aux, z-loss,
     * the all-to-all bytes and seconds since the last call, then each expert's share of the assignments asked (over
     * the global batch).
     */
    void writeStats(double[] into, int at) {
        into[at] = lastDroppedFraction();
        into[at + 1] = lastAux;
        into[at + 2] = lastZLoss;
        into[at + 3] = tokenDispatch.sentBytes() - sentBefore;
        into[at + 4] = (tokenDispatch.waitedNanos() - waitedBefore) / 1e9;
        sentBefore = tokenDispatch.sentBytes();
        waitedBefore = tokenDispatch.waitedNanos();
        double asked = routingStats[2 * nExperts] * topK;
        for (int e = 0; e < nExperts; e++) {
            into[at + 5 + e] = routingStats[2 * nExperts + 2 + e] / asked;
        }
    }

    /** Router: probs, the gate's choices and weights, per-expert row ranges, aux and z-loss. */
    private void route(INDArray x) {
        if (hyper != null) {
            hyper.generate();
        }
        routerLogits(x);
        Mem lg = new Mem(logits);
        Arrays.fill(count, 0);
        Arrays.fill(pSum, 0);
        Arrays.fill(balance, 0);
        double zSum = 0;
        for (int n = 0; n < tokens; n++) {
            int o = n * nExperts;
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < nExperts; e++) {
                max = Math.max(max, lg.get(o + e));
            }
            double sum = 0;
            for (int e = 0; e < nExperts; e++) {
                double v = Math.exp(lg.get(o + e) - max);
                probs[o + e] = v;
                sum += v;
            }
            for (int e = 0; e < nExperts; e++) {
                probs[o + e] /= sum;
                pSum[e] += probs[o + e];
            }
            lse[n] = max + Math.log(sum);
            zSum += lse[n] * lse[n];
        }
        capacity = router.capacity(tokens, nExperts,
                training ? routing.capacityFactor() : routing.evalCapacityFactor());
        router.route(probs, tokens, nExperts, capacity, this::uniform, choice, kept, weight, balance);
        for (int s = 0; s < tokens * topK; s++) {
            if (kept[s]) {
                count[choice[s]]++;
            }
        }
        start[0] = 0;
        for (int e = 0; e < nExperts; e++) {
            start[e + 1] = start[e] + count[e];
        }
        rows = start[nExperts];
        int[] fill = Arrays.copyOf(start, nExperts);
        for (int s = 0; s < tokens * topK; s++) { // token order within each expert: deterministic
            if (kept[s]) {
                int r = fill[choice[s]]++;
                rowToken[r] = s / topK;
                rowSlot[r] = s;
                slotRow[s] = r;
            } else {
                slotRow[s] = -1;
            }
        }
        for (int e = 0; e < nExperts; e++) {
            routingStats[e] = balance[e];
            routingStats[nExperts + e] = pSum[e];
        }
        routingStats[2 * nExperts] = tokens;
        routingStats[2 * nExperts + 1] = zSum;
        Arrays.fill(routingStats, 2 * nExperts + 2, 3 * nExperts + 2, 0.0);
        for (int s = 0; s < tokens * topK; s++) {
            routingStats[2 * nExperts + 2 + choice[s]]++;
        }
        routingStats[3 * nExperts + 2] = rows;
        replicas.sumInPlace(routingStats);
        double globalTokens = routingStats[2 * nExperts];
        double balanceTotal = router.balanceTotal(globalTokens);
        double aux = 0;
        for (int e = 0; e < nExperts; e++) {
            aux += routingStats[e] / balanceTotal * (routingStats[nExperts + e] / globalTokens);
        }
        lastAux = nExperts * aux;
        lastZLoss = routingStats[2 * nExperts + 1] / globalTokens;
    }

    /**
     * Token n's draw {@code stream} from U(0, 1): a hash of (seed, step, layer, global token, stream), so it never
     * depends on the order of draws.
     */
    private double uniform(int n, int stream) {
        long z = routingSeed * 0x9E3779B97F4A7C15L + step;
        z = z * 0xBF58476D1CE4E5B9L + layerKey;
        z = z * 0x94D049BB133111EBL + globalToken(n);
        z = z * 0x9E3779B97F4A7C15L + stream;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L; // SplitMix64's finaliser
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return (z >>> 11) * 0x1.0p-53;
    }

    /**
     * logits[n, e] = x[n] . W[e]. E is tiny (8): a gemm with one side that narrow ran far below peak, so
     * these are plain dot products over the kernel threads (tokens split, no cross-thread reduction).
     */
    private void routerLogits(INDArray x) {
        Mem xm = new Mem(x);
        Mem wm = new Mem(routerW);
        Mem lg = new Mem(logits);
        double[] bias = hyper == null ? null : hyper.bias;
        KernelThreads.forRange(tokens, (part, from, to) -> {
            float[] lanes = Mem.lanes();
            for (int n = from; n < to; n++) {
                for (int e = 0; e < nExperts; e++) {
                    double b = bias == null ? 0 : bias[e];
                    lg.set(n * nExperts + e, Mem.dot(xm, n * dim, wm, e * dim, dim, lanes) + b);
                }
            }
        });
    }

    /**
     * The router's linear backward, dx[n] += sum_e dLogits[n, e] W[e] (tokens split over threads) and
     * dW[e] += sum_n dLogits[n, e] x[n] (experts split, each summing its tokens in order: deterministic).
     */
    private void routerLinearBackward(INDArray x, INDArray dx) {
        Mem xm = new Mem(x);
        Mem dxm = new Mem(dx);
        Mem wm = new Mem(routerW);
        Mem dwm = new Mem(routerDW);
        Mem dl = new Mem(dLogits);
        KernelThreads.forRange(tokens, (part, from, to) -> {
            for (int n = from; n < to; n++) {
                for (int e = 0; e < nExperts; e++) {
                    Mem.axpy(dl.get(n * nExperts + e), wm, e * dim, dxm, n * dim, dim);
                }
            }
        });
        KernelThreads.forRange(nExperts, (part, from, to) -> {
            for (int e = from; e < to; e++) {
                for (int n = 0; n < tokens; n++) {
                    Mem.axpy(dl.get(n * nExperts + e), xm, n * dim, dwm, e * dim, dim);
                }
            }
        });
    }

    /** xs[r] = x[rowToken[r]]: each expert's tokens become contiguous rows (rows split over threads). */
    private void dispatch(INDArray x) {
        Mem src = new Mem(x);
        Mem dst = new Mem(xs);
        KernelThreads.forRange(rows, (part, from, to) -> {
            for (int r = from; r < to; r++) {
                Mem.copy(src, rowToken[r] * dim, dst, r * dim, dim);
            }
        });
    }

    /** out[token] += sum over its slots, in slot order, of weight * ys[row] (tokens split over threads). */
    private void combine(INDArray out) {
        Mem src = new Mem(ys);
        Mem dst = new Mem(out);
        KernelThreads.forRange(tokens, (part, from, to) -> {
            for (int s = from * topK; s < to * topK; s++) {
                if (kept[s]) {
                    Mem.axpy(weight[s], src, slotRow[s] * dim, dst, (s / topK) * dim, dim);
                }
            }
        });
    }

    /** dys[r] = weight * dOut[token]; dWeight = dOut[token] . ys[r] (rows split over threads). */
    private void combineBackward(INDArray dOut) {
        Mem d = new Mem(dOut);
        Mem y = new Mem(ys);
        Mem dy = new Mem(dys);
        Arrays.fill(dWeight, 0, tokens * topK, 0.0); // a dropped choice's weight has no effect, so no gradient
        KernelThreads.forRange(rows, (part, from, to) -> {
            float[] lanes = Mem.lanes();
            for (int r = from; r < to; r++) {
                int t = rowToken[r] * dim;
                dWeight[rowSlot[r]] = Mem.dot(d, t, y, r * dim, dim, lanes);
                Mem.scaledCopy(weight[rowSlot[r]], d, t, dy, r * dim, dim);
            }
        });
    }

    /**
     * dx[token] = sum of its kept slots' rows of dxs in slot order, 0 if none was kept (overwrites dx; the router's
     * dx is added after). Tokens split over threads, so no two threads write one row.
     */
    private void dispatchBackward(INDArray dx) {
        Mem src = new Mem(dxs);
        Mem dst = new Mem(dx);
        KernelThreads.forRange(tokens, (part, from, to) -> {
            for (int n = from; n < to; n++) {
                boolean first = true;
                for (int j = 0; j < topK; j++) {
                    int s = n * topK + j;
                    if (!kept[s]) {
                        continue;
                    }
                    if (first) {
                        Mem.copy(src, slotRow[s] * dim, dst, n * dim, dim);
                        first = false;
                    } else {
                        Mem.axpy(1.0, src, slotRow[s] * dim, dst, n * dim, dim);
                    }
                }
                for (int c = 0; first && c < dim; c++) {
                    dst.set(n * dim + c, 0.0); // every choice dropped: the MoE added nothing to this token
                }
            }
        });
    }

    /** dLogits from the gate's weights, from aux (through P_e only) and from the z-loss, through the softmax. */
    private void routerBackward(double auxGrad) {
        Mem dl = new Mem(dLogits);
        // d aux/d p[n,e] = E f_e / N over the global batch (routingStats holds the replicas' sums)
        double globalTokens = routingStats[2 * nExperts];
        double auxScale = auxGrad * nExperts / (router.balanceTotal(globalTokens) * globalTokens);
        double zScale = routing.zCoef() * 2 / globalTokens; // d z/d logit[n,e] = 2 lse_n p[n,e] / N
        for (int n = 0; n < tokens; n++) {
            int o = n * nExperts;
            for (int e = 0; e < nExperts; e++) {
                dp[e] = auxScale * routingStats[e];
            }
            router.weightBackward(probs, n, nExperts, choice, kept, weight, dWeight, dp);
            double pdp = 0;
            for (int e = 0; e < nExperts; e++) {
                pdp += probs[o + e] * dp[e];
            }
            for (int e = 0; e < nExperts; e++) {
                dl.set(o + e, probs[o + e] * (dp[e] - pdp) + zScale * lse[n] * probs[o + e]);
            }
        }
    }
}
