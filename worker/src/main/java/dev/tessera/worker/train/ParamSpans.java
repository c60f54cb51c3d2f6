package dev.tessera.worker.train;

import dev.tessera.optimizers.ParamSpan;
import dev.tessera.worker.model.ParameterStore;
import java.util.List;

/** The optimizer's view of a parameter store: one span per named tensor. */
public final class ParamSpans {

    private ParamSpans() {
    }

    public static List<ParamSpan> of(ParameterStore store) {
        return store.tensors().stream()
                .map(t -> new ParamSpan(t.name(), t.offset(), t.numel(), t.shape()))
                .toList();
    }
}
