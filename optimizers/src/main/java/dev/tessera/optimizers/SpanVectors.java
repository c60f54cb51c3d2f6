package dev.tessera.optimizers;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Per tensor this rank owns part of, element access to its parameters and gradients (index = element of the
 * tensor) and to its momentum (index = element minus {@link FactoredGeometry#ownFrom()}), made once. One view per
 * tensor keeps the loops' indices ints however large the flat buffers are; a tensor the rank does not own has
 * none.
 */
final class SpanVectors {

    final FlatVector[] params;
    final FlatVector[] grads;
    final FlatVector[] momentum; // entries null without momentum

    private final INDArray[] held; // the buffers the views point into, kept reachable with them

    /** {@code momentum} holds the shard's elements from {@code shardFrom} on, or is null. */
    SpanVectors(FactoredGeometry.Layout layout, INDArray params, INDArray grads, INDArray momentum, long shardFrom) {
        List<FactoredGeometry> spans = layout.spans();
        this.params = new FlatVector[spans.size()];
        this.grads = new FlatVector[spans.size()];
        this.momentum = new FlatVector[spans.size()];
        for (int s = 0; s < spans.size(); s++) {
            FactoredGeometry geo = spans.get(s);
            if (!geo.owns()) {
                continue;
            }
            this.params[s] = FlatVector.of(params, geo.offset(), geo.numel());
            this.grads[s] = FlatVector.of(grads, geo.offset(), geo.numel());
            if (momentum != null) {
                this.momentum[s] = FlatVector.of(momentum, geo.offset() + geo.ownFrom() - shardFrom,
                        geo.ownTo() - geo.ownFrom());
            }
        }
        this.held = new INDArray[] {params, grads, momentum};
    }
}
