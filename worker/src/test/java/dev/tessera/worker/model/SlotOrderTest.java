package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Batch prioritized routing's order against the plain definition (a stable sort of the tokens by falling probability
 * of their first choice), with many ties, over growing and shrinking token counts on one reused instance.
 */
class SlotOrderTest {

    @Test
    void tokensGoByFallingFirstChoiceProbabilityTiesInTokenOrder() {
        SlotOrder slots = new SlotOrder();
        SplittableRandom rnd = new SplittableRandom(3);
        int experts = 4;
        int k = 2;
        for (int tokens : new int[] {1, 2, 7, 64, 33, 100, 5}) {
            double[] probs = new double[tokens * experts];
            int[] choice = new int[tokens * k];
            for (int i = 0; i < probs.length; i++) {
                probs[i] = rnd.nextInt(5) / 4.0; // few distinct values: many ties
            }
            for (int i = 0; i < choice.length; i++) {
                choice[i] = rnd.nextInt(experts);
            }
            int[] expected = IntStream.range(0, tokens).boxed()
                    .sorted(Comparator.comparingDouble((Integer n) -> -probs[n * experts + choice[n * k]]))
                    .mapToInt(Integer::intValue).toArray();
            int[] order = slots.of(probs, tokens, experts, choice, k, true);
            assertArrayEquals(expected, Arrays.copyOf(order, tokens), "tokens " + tokens);
            assertArrayEquals(IntStream.range(0, tokens).toArray(),
                    Arrays.copyOf(slots.of(probs, tokens, experts, choice, k, false), tokens), "token order");
        }
    }
}
