package dev.tessera.comm;

import dev.tessera.comm.control.ControlType;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Objects;

/**
 * Settings of one process's {@link Communicator}.
 *
 * @param jobId              names the job: the Aeron directory and the handshake carry it
 * @param token              the job's secret; peers that present another one are rejected at the handshake
 * @param deadlineMs         the longest any single wait (connect, a collective, a send) may take
 * @param transport          IPC, UDP, or AUTO (IPC when the peer shares this host's driver)
 * @param driverMode         shared driver per host (IPC possible) or one per process (UDP only)
 * @param aeronDir           the driver's directory (see {@link MediaDriverHost#directoryFor})
 * @param mtu                Aeron MTU; 65504 is the largest, and the large value is what makes UDP fast
 * @param termLength         term buffer length of each publication (a power of two); messages stay below it
 * @param smallAllReduceBytes all-reduces up to this size use recursive doubling, larger ones the ring
 * @param controlTypes       control messages defined above comm that this process sends or receives
 */
public record CommConfig(String jobId, String token, long deadlineMs, Transport transport, DriverMode driverMode,
                         String aeronDir, int mtu, int termLength, int smallAllReduceBytes,
                         List<ControlType<?>> controlTypes) {

    /** Environment variable a launcher sets to hand workers the job token. */
    public static final String TOKEN_ENV = "TESSERA_JOB_TOKEN";

    public static final int MAX_MTU = 65504;

    /**
     * Each publication's term length: a log of three terms, which a busy stream cycles through whole, so every
     * worker keeps its own publication's log and its peer's image resident (ZeRO's streams touch all of both).
     * 4 MiB bounds that at 2 x 12 MiB per peer; messages go in fragments of at most one MTU, and a UDP stream's
     * window (half a term) is the 2 MiB that the driver's initial window allows anyway.
     */
    public static final int DEFAULT_TERM_LENGTH = 4 << 20;

    public CommConfig {
        Objects.requireNonNull(jobId, "jobId");
        Objects.requireNonNull(token, "token");
        Objects.requireNonNull(transport, "transport");
        Objects.requireNonNull(driverMode, "driverMode");
        controlTypes = List.copyOf(controlTypes);
        if (!jobId.matches("[A-Za-z0-9_.-]{1,64}")) {
            throw new UserInputException("job id '" + jobId + "' must be 1-64 characters of [A-Za-z0-9_.-]");
        }
        if (token.isEmpty()) {
            throw new UserInputException("the job token is empty; set it in the config or in " + TOKEN_ENV);
        }
        if (deadlineMs <= 0) {
            throw new UserInputException("comm deadline must be > 0 ms (got " + deadlineMs + ")");
        }
        if (mtu < 1408 || mtu > MAX_MTU || mtu % 32 != 0) {
            throw new UserInputException("comm mtu must be a multiple of 32 in [1408, 65504] (got " + mtu + ")");
        }
        if (Integer.bitCount(termLength) != 1 || termLength < 65536 || termLength > (1 << 30)) {
            throw new UserInputException("comm term length must be a power of two in [64 KiB, 1 GiB] (got "
                    + termLength + ")");
        }
        if (driverMode == DriverMode.PER_PROCESS && transport == Transport.IPC) {
            throw new UserInputException("transport ipc needs a shared driver per host (driver mode per-process"
                    + " can only use udp)");
        }
    }

    /** Defaults for a job: 30 s deadline, AUTO transport, shared driver, largest MTU, 4 MiB terms. */
    public static CommConfig defaults(String jobId, String token) {
        return new CommConfig(jobId, token, 30_000, Transport.AUTO, DriverMode.SHARED_PER_HOST,
                MediaDriverHost.directoryFor(jobId, "host"), MAX_MTU, DEFAULT_TERM_LENGTH, 64 << 10, List.of());
    }

    /** The token from {@value #TOKEN_ENV}, or a user error naming the variable. */
    public static String tokenFromEnvironment() {
        String token = System.getenv(TOKEN_ENV);
        if (token == null || token.isBlank()) {
            throw new UserInputException("no job token: set " + TOKEN_ENV);
        }
        return token;
    }

    public CommConfig withDeadlineMs(long value) {
        return new CommConfig(jobId, token, value, transport, driverMode, aeronDir, mtu, termLength,
                smallAllReduceBytes, controlTypes);
    }

    public CommConfig withTransport(Transport value) {
        return new CommConfig(jobId, token, deadlineMs, value, driverMode, aeronDir, mtu, termLength,
                smallAllReduceBytes, controlTypes);
    }

    public CommConfig withDriver(DriverMode mode, String dir) {
        return new CommConfig(jobId, token, deadlineMs, transport, mode, dir, mtu, termLength,
                smallAllReduceBytes, controlTypes);
    }

    public CommConfig withToken(String value) {
        return new CommConfig(jobId, value, deadlineMs, transport, driverMode, aeronDir, mtu, termLength,
                smallAllReduceBytes, controlTypes);
    }

    public CommConfig withSmallAllReduceBytes(int value) {
        return new CommConfig(jobId, token, deadlineMs, transport, driverMode, aeronDir, mtu, termLength, value,
                controlTypes);
    }

    /** Adds control messages defined above comm (see {@link ControlType}) to this process's codecs. */
    public CommConfig withControlTypes(List<ControlType<?>> value) {
        return new CommConfig(jobId, token, deadlineMs, transport, driverMode, aeronDir, mtu, termLength,
                smallAllReduceBytes, value);
    }

    /** What the handshake carries instead of the token itself: SHA-256 of job id and token. */
    byte[] tokenDigest() {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(jobId.getBytes(StandardCharsets.UTF_8));
            sha.update((byte) 0);
            sha.update(token.getBytes(StandardCharsets.UTF_8));
            return sha.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    @Override
    public String toString() {
        // Never print the token.
        return "CommConfig[jobId=" + jobId + ", deadlineMs=" + deadlineMs + ", transport=" + transport
                + ", driverMode=" + driverMode + ", aeronDir=" + aeronDir + ", mtu=" + mtu + ", termLength="
                + termLength + ", smallAllReduceBytes=" + smallAllReduceBytes + "]";
    }
}
