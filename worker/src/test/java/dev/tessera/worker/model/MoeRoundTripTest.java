package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ALGORITHMS.md section 7, test oracle 3: dispatch, an identity expert, combine gives Y = (sum of kept weights) * X.
 * The identity stands in for the experts where the rows leave for them: a {@link TokenDispatch} that hands back, as
 * the experts' outputs, the very rows it was sent.
 */
class MoeRoundTripTest {

    /** Returns the rows sent to the experts as the experts' outputs. */
    private static final class IdentityExperts implements TokenDispatch {

        @Override
        public boolean movesRows() {
            return false;
        }

        @Override
        public int plan(int[] rowsPerExpert, int capacity, int[] rowsPerHeldExpert) {
            return TokenDispatch.LOCAL.plan(rowsPerExpert, capacity, rowsPerHeldExpert);
        }

        @Override
        public void roundTrip(INDArray rows, INDArray expertRows, int heldExperts, ExpertStep step,
                              INDArray expertResults, INDArray results) {
            results.assign(rows);
        }

        @Override
        public long sentBytes() {
            return 0;
        }

        @Override
        public long waitedNanos() {
            return 0;
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"topk", "switch", "gshard"})
    void dispatchThenIdentityThenCombineScalesEachTokenByItsKeptWeights(String gate) {
        int n = 24;
        int dim = 8;
        int k = gate.equals("switch") ? 1 : 2;
        // capacity 0.5: switch and gshard drop; topk is dropless
        ModelConfig cfg = new ModelConfig(11, dim, 1, 2, 12, 4, k, 1, 5, 10000.0, 1e-5, 0.01, 64)
                .withRouting(new Routing(gate, 0.5, 2.0, 0, 0));
        ParameterStore.Builder b = ParameterStore.builder();
        MoE.register(b, "m", cfg);
        ParameterStore ps = b.build(DataType.DOUBLE);
        SplittableRandom rng = new SplittableRandom(7);
        GradCheck.fill(ps.params(), rng, 0, 0.5);
        MoE moe = new MoE(ps, "m", cfg, n);
        moe.useTokenDispatch(new IdentityExperts());
        INDArray x = GradCheck.randn(rng, 1, n, dim);
        INDArray out = Nd4j.zeros(DataType.DOUBLE, n, dim);
        moe.forward(x, out);

        int tokensWithDrops = 0;
        for (int t = 0; t < n; t++) {
            double kept = moe.keptWeightOf(t);
            tokensWithDrops += moe.droppedChoicesOf(t) > 0 ? 1 : 0;
            for (int c = 0; c < dim; c++) {
                assertEquals(kept * x.getDouble(t, c), out.getDouble(t, c), 1e-12, gate + " token " + t);
            }
        }
        assertEquals(!gate.equals("topk"), tokensWithDrops > 0, gate + ": " + tokensWithDrops + " tokens lost a choice");
        if (gate.equals("topk")) {
            for (int t = 0; t < n; t++) {
                assertEquals(1.0, moe.keptWeightOf(t), 1e-12, "renormalised top-k weights sum to 1");
            }
        }
        assertEquals(gate.equals("topk"), moe.lastDroppedFraction() == 0);
    }
}
