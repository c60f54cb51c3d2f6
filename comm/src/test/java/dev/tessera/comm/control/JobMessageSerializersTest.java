package dev.tessera.comm.control;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The workers' reports survive the codec field for field. */
class JobMessageSerializersTest {

    private final ControlCodec codec = new ControlCodec();
    private final UnsafeBuffer buffer = new UnsafeBuffer(ByteBuffer.allocateDirect(ControlCodec.MAX_MESSAGE_BYTES));

    private ControlMessage roundTrip(ControlMessage m) {
        int length = codec.encode(m, buffer, 0);
        return codec.decode(buffer, 0, length);
    }

    @Test
    void reports() {
        StepReport sent = new StepReport(0, 17, 2.5, 1.01, 3e-4, 0.75, 9876.5, 0.21, 0.02, 0.03, 5_000_000_123L, 4,
                new double[] {1, 0.05, 1.01, 2.5, 0.25, 0.25, 0.3, 0.2});
        sent.choiceLayers = new String[] {"model.layers.0.mlp.up_proj.weight", "lm_head.weight"};
        sent.choiceValues = new double[] {0.002, 0.05};
        StepReport s = assertInstanceOf(StepReport.class, roundTrip(sent));
        assertArrayEquals(sent.choiceLayers, s.choiceLayers);
        assertArrayEquals(sent.choiceValues, s.choiceValues);
        assertEquals(17, s.step);
        assertEquals(2.5, s.loss);
        assertEquals(1.01, s.auxLoss);
        assertEquals(3e-4, s.lr);
        assertEquals(0.75, s.gradNorm);
        assertEquals(9876.5, s.tokensPerSecond);
        assertEquals(0.21, s.stepSeconds);
        assertEquals(0.02, s.exposedCommSeconds);
        assertEquals(0.03, s.attentionWaitSeconds);
        assertEquals(5_000_000_123L, s.wireBytes);
        assertEquals(4, s.moeExperts);
        assertArrayEquals(new double[] {1, 0.05, 1.01, 2.5, 0.25, 0.25, 0.3, 0.2}, s.moeLayers);
        StepReport dense = assertInstanceOf(StepReport.class,
                roundTrip(new StepReport(0, 1, 2.5, 0, 3e-4, 0.75, 9876.5, 0.21, 0.02, 0, 0, 0, new double[0])));
        assertEquals(0, dense.moeLayers.length);
        assertEquals(0, dense.choiceLayers.length);

        EvalReport e = assertInstanceOf(EvalReport.class, roundTrip(new EvalReport(0, 250, 1.2)));
        assertEquals(250, e.step);
        assertEquals(1.2, e.loss);

        CheckpointReport c = assertInstanceOf(CheckpointReport.class,
                roundTrip(new CheckpointReport(0, 20, "/runs/x/checkpoints/step-0000020")));
        assertEquals("/runs/x/checkpoints/step-0000020", c.path);
    }

    @Test
    void finishedWithAndWithoutAnError() {
        WorkerFinished ok = new WorkerFinished();
        ok.rank = 1;
        ok.steps = 1500;
        ok.tokens = 3_072_000;
        ok.finalLoss = 1.13;
        ok.evalLoss = 1.14;
        ok.tokensPerSecond = 10_000;
        ok.trainSeconds = 300;
        ok.exposedCommFraction = 0.08;
        ok.stateBytes = 8_979_456;
        ok.paramBytes = 3_145_728;
        ok.gradBytes = 1_052_672;
        ok.peakRssBytes = 3_221_225_472L;
        WorkerFinished back = assertInstanceOf(WorkerFinished.class, roundTrip(ok));
        assertNull(back.error);
        assertEquals(-1, back.suspectRank);
        assertEquals(1500, back.steps);
        assertEquals(3_072_000, back.tokens);
        assertEquals(1.14, back.evalLoss);
        assertEquals(0.08, back.exposedCommFraction);
        assertEquals(8_979_456, back.stateBytes);
        assertEquals(3_145_728, back.paramBytes);
        assertEquals(1_052_672, back.gradBytes);
        assertEquals(3_221_225_472L, back.peakRssBytes);

        WorkerFinished failed = assertInstanceOf(WorkerFinished.class,
                roundTrip(WorkerFinished.failed(0, "peer rank 1 went away", false, 1)));
        assertEquals("peer rank 1 went away", failed.error);
        assertEquals(1, failed.suspectRank);
        assertEquals(0, failed.paramBytes);
        assertEquals(0, failed.gradBytes);
    }
}
