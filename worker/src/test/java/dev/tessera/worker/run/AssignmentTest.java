package dev.tessera.worker.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.comm.compress.CompressionMethod;
import dev.tessera.comm.compress.CompressionSpec;
import dev.tessera.comm.compress.FedZip;
import dev.tessera.comm.compress.LGreCoError;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.OptimizerSection;
import dev.tessera.worker.job.OptimizerKind;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.OptionalDouble;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.worker.job.MeshSection;
import dev.tessera.worker.parallel.SequenceScheme;

/** The job spec travels to workers as a typed, versioned control message. */
class AssignmentTest {

    private final ControlCodec codec = new ControlCodec(Assignment.CONTROL_TYPES);
    private final UnsafeBuffer frame = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);

    private Assignment roundTrip(Assignment a) {
        int length = codec.encode(a, frame, 0);
        return (Assignment) codec.decode(frame, 0, length);
    }

    @Test
    void theWholeSpecArrivesFieldForField() {
        WorkerJob job = WorkerJob.of(JobConfig.defaults(), Path.of("/runs/a"), Path.of("/runs/a/checkpoints/step-9"));
        Assignment back = roundTrip(new Assignment(3, job));
        assertEquals(new Assignment(Assignment.VERSION, 3, dev.tessera.worker.model.ExpertShard.all(job.model().nExperts()),
                java.util.stream.IntStream.range(0, job.train().seqLen()).toArray(), job), back);
        assertEquals(job, back.readableJob());

        OptimizerSection o = JobConfig.defaults().optimizer();
        JobConfig custom = new JobConfig(JobConfig.defaults().model(), JobConfig.defaults().data(),
                JobConfig.defaults().train(), new OptimizerSection(OptimizerKind.ADAFACTOR, o.lr(), o.minLr(),
                o.warmupSteps(), o.weightDecay(), o.beta1(), o.beta2(), o.eps(), o.gradClip(), true,
                new dev.tessera.worker.job.AdafactorSection(1e-30, 1e-3, 1.0, -0.8, true, true, false,
                        OptionalDouble.of(0.9), 0.0), o.came()),
                JobConfig.defaults().eval(), JobConfig.defaults().checkpoint(), JobConfig.defaults().mesh(),
                JobConfig.defaults().launch(), JobConfig.defaults().restart(), JobConfig.defaults().zero(),
                new dev.tessera.worker.job.MoeSection(dev.tessera.worker.job.AllToAllKind.HIERARCHICAL, 2, true),
                new CompressionSpec(CompressionMethod.FEDZIP, 0.02, 3, 64, 8, 0.01, FedZip.Encoding.HUFFMAN, true,
                        true, 5, 50, 100, -0.25, LGreCoError.NORM, 2_000),
                JobConfig.defaults().fault(),
                new dev.tessera.worker.job.Co2Section(true, 4, 0.7, 0.2, 2.0,
                        dev.tessera.worker.job.GapPenaltyMode.GAP_SCALED, true, 0.5, true, true), "/out/\u00e9");
        WorkerJob customJob = new WorkerJob(custom, "/out/\u00e9", null);
        assertEquals(customJob, roundTrip(new Assignment(0, customJob)).readableJob());
        assertNull(roundTrip(new Assignment(0, customJob)).job().resume());
    }

    @Test
    void eachRankOfAnExpertGroupIsToldItsShareOfTheExperts() {
        JobConfig d = JobConfig.defaults();
        JobConfig ep = new JobConfig(d.model(), d.data(), d.train(), d.optimizer(), d.eval(), d.checkpoint(),
                new MeshSection(4, 1, 2, SequenceScheme.ALLGATHER), d.launch(), d.restart(), d.zero(), d.moe(), d.compression(), d.fault(),
                d.co2(), d.out());
        WorkerJob job = WorkerJob.of(ep, Path.of("/runs/ep"), null);
        int experts = job.model().nExperts();
        for (int rank = 0; rank < 4; rank++) {
            Assignment back = roundTrip(new Assignment(rank, job));
            int first = rank % 2 * experts / 2;
            assertEquals(new dev.tessera.worker.model.ExpertShard(first, experts / 2), back.experts(), "rank " + rank);
        }
    }

    @Test
    void eachRankOfASequenceGroupIsToldItsPositions() {
        JobConfig d = JobConfig.defaults();
        for (SequenceScheme scheme : SequenceScheme.values()) {
            JobConfig sp = new JobConfig(d.model(), d.data(), d.train(), d.optimizer(), d.eval(), d.checkpoint(),
                    new MeshSection(1, 4, 1, scheme), d.launch(), d.restart(), d.zero(), d.moe(), d.compression(), d.fault(), d.co2(), d.out());
            WorkerJob job = WorkerJob.of(sp, Path.of("/runs/sp"), null);
            int seq = job.train().seqLen();
            for (int rank = 0; rank < 4; rank++) {
                int[] expected = scheme.placement().positions(seq, 4, rank);
                assertArrayEquals(expected, roundTrip(new Assignment(rank, job)).positions(), scheme + " rank " + rank);
            }
        }
        // Zig-zag: rank 1 of 4 holds chunks 1 and 6 of 8.
        int chunk = d.train().seqLen() / 8;
        int[] rank1 = SequenceScheme.RING.placement().positions(d.train().seqLen(), 4, 1);
        assertEquals(chunk, rank1[0]);
        assertEquals(6 * chunk, rank1[chunk]);
    }

    @Test
    void aWorkerRefusesAnotherVersionSayingWhy() {
        int length = codec.encode(new Assignment(2, WorkerJob.of(JobConfig.defaults(), Path.of("/r"), null)), frame, 0);
        assertEquals(Assignment.VERSION, frame.getByte(1)); // after the message id: the version, one varint byte
        frame.putByte(1, (byte) (Assignment.VERSION + 1));
        Assignment other = (Assignment) codec.decode(frame, 0, length);
        assertEquals(2, other.rank());
        IllegalStateException e = assertThrows(IllegalStateException.class, other::readableJob);
        assertEquals("rank 2 received a job spec of version " + (Assignment.VERSION + 1) + ", but this worker reads"
                + " version " + Assignment.VERSION + "; run the coordinator and its workers from the same Tessera"
                + " build", e.getMessage());
    }

    @Test
    void aJobTooLargeForItsMessageIsAUserErrorNamingTheLimit() {
        Assignment.requireFits(WorkerJob.of(JobConfig.defaults(), Path.of("/runs/" + "r".repeat(4096)), null));
        WorkerJob huge = WorkerJob.of(JobConfig.defaults(), Path.of("/runs/" + "r".repeat(ControlCodec.MAX_MESSAGE_BYTES)),
                null);
        UserInputException e = assertThrows(UserInputException.class, () -> Assignment.requireFits(huge));
        assertTrue(e.getMessage().contains("the " + ControlCodec.MAX_MESSAGE_BYTES + " bytes"), e.getMessage());
    }

    /**
     * The wire layout of {@link WorkerJob}, hashed. When this fails, the spec's fields changed: raise
     * {@link Assignment#VERSION} by one and put the new hash here, so that a worker of the old build refuses the
     * job by its version instead of misreading it.
     */
    @Test
    void theLayoutChangesOnlyWithTheVersion() throws Exception {
        String schema = Assignment.JOB.schema();
        String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                .digest(schema.getBytes(StandardCharsets.UTF_8))).substring(0, 16);
        assertEquals(14, Assignment.VERSION);
        assertEquals("8479ebb5e8c70bee", hash, "the layout of version " + Assignment.VERSION + " changed: " + schema);
    }
}
