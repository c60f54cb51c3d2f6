package dev.tessera.optimizers;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Which optimizer a job uses and the settings of each, as each replica receives them from the job spec;
 * {@link #create} builds it over a replica's flat parameter and gradient buffers.
 */
public record OptimizerSpec(String name, AdamWConfig adamw, AdafactorConfig adafactor, CAMEConfig came) {

    public static final String ADAMW = "adamw";
    public static final String ADAFACTOR = "adafactor";
    public static final String CAME = "came";

    /** The single-rank optimizer: the whole buffer, nothing to reduce. */
    public Optimizer create(INDArray params, INDArray grads, List<ParamSpan> spans) {
        return create(params, grads, spans, Shard.whole(params.length()), ShardReducer.LOCAL);
    }

    /**
     * The optimizer of one ZeRO rank: it updates only {@code shard} (cut by {@link ShardPlan#bounds}) and sums
     * its statistics over the group through {@code reducer}.
     */
    public Optimizer create(INDArray params, INDArray grads, List<ParamSpan> spans, Shard shard,
                            ShardReducer reducer) {
        return switch (name) {
            case ADAMW -> new AdamW(params, grads, spans, adamw, shard, reducer);
            case ADAFACTOR -> new Adafactor(params, grads, spans, adafactor, shard, reducer);
            case CAME -> new CAME(params, grads, spans, came, shard, reducer);
            default -> throw unknown();
        };
    }

    /**
     * The state elements the optimizer of the rank owning {@code shard} keeps, without allocating them: what
     * {@link Optimizer#stateBytes} reports divided by the element size. {@link ShardPlan#bounds} balances it.
     */
    public long stateElements(List<ParamSpan> spans, Shard shard) {
        return switch (name) {
            case ADAMW -> AdamW.stateElements(shard);
            case ADAFACTOR -> Adafactor.stateElements(spans, shard, adafactor);
            case CAME -> dev.tessera.optimizers.CAME.stateElements(spans, shard);
            default -> throw unknown();
        };
    }

    private IllegalArgumentException unknown() {
        return new IllegalArgumentException("unknown optimizer '" + name + "'; one of adamw, adafactor, came");
    }
}
