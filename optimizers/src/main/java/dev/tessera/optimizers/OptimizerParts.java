package dev.tessera.optimizers;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One rank's optimizer when its buffers hold parts that different ZeRO groups shard: expert parallelism keeps the
 * dense tensors, sharded over the data-parallel group, apart from the held experts, sharded over the
 * expert-data-parallel group. Each part is an optimizer of its own over its {@link Shard}, with its group's
 * {@link ShardReducer}; a step steps every part in order, with the same learning rate and gradient scale, so the
 * update is the one optimizer's over the union.
 */
public final class OptimizerParts implements Optimizer {

    private final List<Optimizer> parts;

    public OptimizerParts(List<Optimizer> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("an optimizer needs at least one part");
        }
        this.parts = List.copyOf(parts);
    }

    @Override
    public void step(long step, double lr, double gradScale) {
        for (Optimizer part : parts) {
            part.step(step, lr, gradScale);
        }
    }

    @Override
    public long stateBytes() {
        long bytes = 0;
        for (Optimizer part : parts) {
            bytes += part.stateBytes();
        }
        return bytes;
    }

    /**
     * Refused: the parts' flat state (AdamW's moments, a run over the whole flat buffer each) shares its names, so
     * no one map holds it; checkpoints read {@link #stateParts}.
     */
    @Override
    public Map<String, StateSlice> state() {
        throw new UnsupportedOperationException("an optimizer of " + parts.size() + " parts keeps its state per part;"
                + " read stateParts()");
    }

    @Override
    public List<Map<String, StateSlice>> stateParts() {
        List<Map<String, StateSlice>> states = new ArrayList<>();
        for (Optimizer part : parts) {
            states.addAll(part.stateParts());
        }
        return states;
    }
}
