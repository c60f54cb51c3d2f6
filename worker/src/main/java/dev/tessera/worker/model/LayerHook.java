package dev.tessera.worker.model;

/**
 * What happens around every layer's forward and backward: the one place where the model meets data
 * parallelism, ZeRO and the profiler. A layer here is a unit of the flat buffers ({@link Transformer#unitBounds}):
 * the embedding, each block, and the head (final norm, lm_head and the loss).
 * <ul>
 *   <li>Before a layer runs its parameters must be in place, and the next layer's may be fetched meanwhile
 *       ({@link ParameterSync#acquire}); after it ran they may go ({@link ParameterSync#release}).</li>
 *   <li>After a layer's backward its gradients are final, and their reduction may start ({@link GradientSync#ready}).</li>
 *   <li>A block's backward also reports its parts as they are through: a dense block's down projection
 *       ({@link #downDone}), its gate and up projections' weights ({@link #weightsRead}, before their gradients
 *       are written), then its FFN half ({@link #ffnDone}). Their gradients are final and their parameters may go.
 *       A block that recomputes its forward lets its attention half go once that is recomputed
 *       ({@link #attentionRecomputed}), and has it back once its FFN half is through. Only once the FFN half is
 *       through does backward fetch the next block (its attention half; the rest when its backward starts), so
 *       while its gradient shard fills a rank holds about one block.</li>
 *   <li>With {@code -Dtessera.profile=true} each kind of layer's time goes to {@link ModelStepTimer}, apart from
 *       fetching and releasing parameters and starting reductions ({@code sync.before_layer},
 *       {@code sync.after_layer}); the kernels that run within a layer record their share of it there.</li>
 * </ul>
 * No call allocates; with profiling off the clock costs one volatile read.
 */
final class LayerHook {

    /** For {@link #backward}: the layer's parameters are still in place from forward (the head). */
    static final int HELD = -2;
    /** For {@link #backward}: the layer's backward reads no parameters (the embedding only adds into its gradient). */
    static final int UNUSED = -3;

    private final long[] gradientStart; // per layer: its first gradient element, final once its backward ran
    private static final int ZERO_GRADS = ModelStepTimer.section("zero_grads");
    private static final int BEFORE_LAYER = ModelStepTimer.section("sync.before_layer");
    private static final int AFTER_LAYER = ModelStepTimer.section("sync.after_layer");

    private final int[] forwardSection;
    private final int[] backwardSection;
    private ParameterSync parameters = ParameterSync.RESIDENT;
    private GradientSync gradients = GradientSync.NONE;
    private boolean holding; // the layer in backward holds parameters that it releases when done
    private int fetchAfterFfn = -1; // the layer to fetch once the one in backward reports its FFN half done
    private boolean attentionAway;  // the block in backward let its attention half go after recomputing it
    private long clock;

    /** @param kinds the profile section of each layer, e.g. {@code block}; {@code unitBounds} one longer */
    LayerHook(long[] unitBounds, String[] kinds) {
        gradientStart = java.util.Arrays.copyOf(unitBounds, kinds.length);
        forwardSection = new int[kinds.length];
        backwardSection = new int[kinds.length];
        for (int u = 0; u < kinds.length; u++) {
            forwardSection[u] = ModelStepTimer.section(kinds[u] + ".fwd");
            backwardSection[u] = ModelStepTimer.section(kinds[u] + ".bwd");
        }
    }

    void use(ParameterSync sync) {
        parameters = sync;
    }

    void use(GradientSync sync) {
        gradients = sync;
    }

    /** Before backward accumulates into the gradient buffer. */
    void zeroGradients(ParameterStore params) {
        long t = ModelStepTimer.start();
        gradients.zero(params);
        ModelStepTimer.stop(ZERO_GRADS, t);
    }

    /** Before {@code layer}'s forward; {@code next} is the layer after it (-1: none before backward). */
    void forward(int layer, int next) {
        acquire(layer, next);
        clock = ModelStepTimer.open(forwardSection[layer]);
    }

    /** After {@code layer}'s forward; {@code release}: its parameters are not used again this pass. */
    void forwardDone(int layer, boolean release) {
        long t = ModelStepTimer.close(forwardSection[layer], clock);
        if (release) {
            parameters.release(layer);
        }
        ModelStepTimer.stop(AFTER_LAYER, t);
    }

    /**
     * Before {@code layer}'s backward; {@code next} is the layer whose backward follows (-1: none that reads
     * parameters), or {@link #HELD} or {@link #UNUSED}. A layer given a {@code next} is a block: it is fetched
     * when this one reports its FFN half done.
     */
    void backward(int layer, int next) {
        holding = next != UNUSED;
        if (next != HELD && next != UNUSED) {
            acquire(layer, -1);
            fetchAfterFfn = next;
        }
        clock = ModelStepTimer.open(backwardSection[layer]);
    }

    /**
     * Within {@code layer}'s backward, once its down projection is through: the gradients from {@code downFrom} on
     * are final and the parameters there are not read again this pass.
     */
    void downDone(int layer, long downFrom) {
        long t = pause(layer);
        gradients.ready(downFrom);
        parameters.releaseFrom(layer, downFrom, -1);
        resume(layer, t);
    }

    /**
     * Within {@code layer}'s backward, once its recomputed forward has run the attention half: those parameters may
     * go until the FFN half is through.
     */
    void attentionRecomputed(int layer) {
        long t = pause(layer);
        parameters.releaseAttention(layer);
        attentionAway = true;
        resume(layer, t);
    }

    /**
     * Within {@code layer}'s backward, once its parameters from {@code from} on are not read again this pass, though
     * some of their gradients are still to come: those parameters may go.
     */
    void weightsRead(int layer, long from) {
        long t = pause(layer);
        parameters.releaseFrom(layer, from, -1);
        resume(layer, t);
    }

    /**
     * Within {@code layer}'s backward, once its FFN half is through: the gradients from {@code ffnFrom} on are
     * final and the parameters there are not read again this pass; the next layer's fetch starts.
     */
    void ffnDone(int layer, long ffnFrom) {
        long t = pause(layer);
        gradients.ready(ffnFrom);
        if (attentionAway) {
            parameters.releaseFrom(layer, ffnFrom, -1);
            parameters.reacquireAttention(layer, fetchAfterFfn);
            attentionAway = false;
        } else {
            parameters.releaseFrom(layer, ffnFrom, fetchAfterFfn);
        }
        fetchAfterFfn = -1;
        resume(layer, t);
    }

    /** After {@code layer}'s backward: its parameters may go, its gradients are final. */
    void backwardDone(int layer) {
        long t = ModelStepTimer.close(backwardSection[layer], clock);
        if (holding) {
            parameters.release(layer);
        }
        gradients.ready(gradientStart[layer]);
        ModelStepTimer.stop(AFTER_LAYER, t);
    }

    /** Within {@code layer}'s backward: its clock stops while the sync work that follows is timed apart. */
    private long pause(int layer) {
        return ModelStepTimer.close(backwardSection[layer], clock);
    }

    /** The sync work since {@link #pause} to {@code sync.after_layer}, and {@code layer}'s backward clock again. */
    private void resume(int layer, long paused) {
        ModelStepTimer.stop(AFTER_LAYER, paused);
        clock = ModelStepTimer.open(backwardSection[layer]);
    }

    private void acquire(int layer, int next) {
        long t = ModelStepTimer.start();
        parameters.acquire(layer, next);
        ModelStepTimer.stop(BEFORE_LAYER, t);
    }
}
