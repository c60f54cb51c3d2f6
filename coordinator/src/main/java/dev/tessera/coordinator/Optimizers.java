package dev.tessera.coordinator;

import dev.tessera.coordinator.config.OptimizerSection;
import dev.tessera.optimizers.AdamW;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.Adafactor;
import dev.tessera.optimizers.CAME;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.optimizers.ParamSpan;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The optimizer that {@code optimizer.name} selects, over the given flat parameter and gradient buffers. */
public final class Optimizers {

    private Optimizers() {
    }

    public static Optimizer create(OptimizerSection section, INDArray params, INDArray grads, List<ParamSpan> spans) {
        return switch (section.name()) {
            case ADAMW -> new AdamW(params, grads, spans, new AdamWConfig(section.beta1(), section.beta2(),
                    section.eps(), section.weightDecay()));
            case ADAFACTOR -> new Adafactor(params, grads, spans, section.adafactor().toConfig());
            case CAME -> new CAME(params, grads, spans, section.came().toConfig());
        };
    }
}
