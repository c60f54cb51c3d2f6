package dev.tessera.coordinator;

import dev.tessera.comm.control.Abort;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.EvalReport;
import dev.tessera.comm.control.Hello;
import dev.tessera.comm.control.StepReport;
import dev.tessera.comm.control.TextMessage;
import dev.tessera.comm.control.WorkerFinished;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.run.Assignment;
import dev.tessera.worker.run.WorkerJob;
import org.agrona.concurrent.UnsafeBuffer;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.SplittableRandom;

/**
 * Frames an attacker without the job token could put on a control stream: the campaign's two frames, random
 * bytes, wrong type ids, mutated and truncated messages, lengths claiming gigabytes, oversized frames, Hellos
 * with wrong tokens or job ids, and well-formed job messages (a forged loss report, a forged abort) that only an
 * authenticated session may send. Each is one Aeron fragment. Counts what it made, by kind.
 */
final class HostileFrames {

    enum Kind { CAMPAIGN, RANDOM, WRONG_ID, MUTATED, TRUNCATED, HUGE_LENGTH, OVERSIZED, WRONG_TOKEN_HELLO, FORGED_MESSAGE }

    private final SplittableRandom random;
    private final String jobId;
    private final ControlCodec codec = new ControlCodec(Assignment.CONTROL_TYPES);
    private final byte[][] valid;
    final long[] made = new long[Kind.values().length];

    HostileFrames(long seed, String jobId) {
        this.random = new SplittableRandom(seed);
        this.jobId = jobId;
        ControlMessage[] messages = {new Hello(jobId, 1, new byte[32], 1, 2), new Abort(0, 1, "forged"),
                new TextMessage("forged"), new Assignment(0, WorkerJob.of(JobConfig.defaults(), Path.of("/runs/forged"), null)),
                new StepReport(0, 3, 0.125, 1, 1e-3, 1, 1, 1, 0, 0, 0, 1, new double[] {1, 0, 1, 0, 1}), new EvalReport(0, 3, 0.125),
                WorkerFinished.failed(0, "forged failure", false, 1)};
        UnsafeBuffer out = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
        valid = new byte[messages.length][];
        for (int i = 0; i < messages.length; i++) {
            int length = codec.encode(messages[i], out, 0);
            valid[i] = new byte[length];
            out.getBytes(0, valid[i]);
        }
    }

    /** The next frame, written at 0 in {@code buffer}; returns its length. */
    int next(UnsafeBuffer buffer) {
        Kind kind = Kind.values()[random.nextInt(Kind.values().length)];
        made[kind.ordinal()]++;
        byte[] frame = switch (kind) {
            case CAMPAIGN -> HexFormat.of().parseHex(random.nextBoolean() ? "03ffffffff07" : "0f");
            case RANDOM -> bytes(1 + random.nextInt(600));
            case WRONG_ID -> {
                byte[] b = bytes(1 + random.nextInt(64));
                do {
                    b[0] = (byte) random.nextInt(256);
                } while ((b[0] & 0xFF) - 2 >= ControlCodec.FIRST_ID && (b[0] & 0xFF) - 2 <= ControlCodec.FIRST_EXTENSION_ID);
                yield b;
            }
            case MUTATED -> flip(pick());
            case TRUNCATED -> {
                byte[] v = pick();
                yield Arrays.copyOf(v, 1 + random.nextInt(v.length - 1));
            }
            case HUGE_LENGTH -> {
                byte[] v = pick();
                int at = 1 + random.nextInt(v.length - 1);
                byte[] b = Arrays.copyOf(v, Math.max(v.length, at + 5));
                System.arraycopy(HexFormat.of().parseHex(random.nextBoolean() ? "ffffffff07" : "ffffffff0f"), 0, b, at, 5);
                yield b;
            }
            case OVERSIZED -> {
                byte[] b = bytes(ControlCodec.MAX_MESSAGE_BYTES + 1 + random.nextInt(8192));
                b[0] = pick()[0];
                yield b;
            }
            case WRONG_TOKEN_HELLO -> hello();
            case FORGED_MESSAGE -> pick().clone();
        };
        buffer.putBytes(0, frame);
        return frame.length;
    }

    private byte[] hello() {
        byte[] digest = bytes(random.nextBoolean() ? 32 : random.nextInt(64));
        String job = random.nextBoolean() ? jobId : "job-" + random.nextInt(1000);
        UnsafeBuffer out = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
        int length = codec.encode(new Hello(job, random.nextInt(4) - 1, digest, random.nextInt(), random.nextInt()),
                out, 0);
        byte[] b = new byte[length];
        out.getBytes(0, b);
        return b;
    }

    private byte[] pick() {
        return valid[random.nextInt(valid.length)];
    }

    private byte[] flip(byte[] v) {
        byte[] b = v.clone();
        for (int flips = 1 + random.nextInt(4); flips > 0; flips--) {
            b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
        }
        return b;
    }

    private byte[] bytes(int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) random.nextInt(256);
        }
        return b;
    }

    String describe() {
        StringBuilder s = new StringBuilder();
        for (Kind k : Kind.values()) {
            s.append(s.isEmpty() ? "" : ", ").append(k.name().toLowerCase()).append(' ').append(made[k.ordinal()]);
        }
        return s.toString();
    }
}
