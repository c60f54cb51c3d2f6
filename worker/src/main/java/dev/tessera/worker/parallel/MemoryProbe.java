package dev.tessera.worker.parallel;

/**
 * The most physical memory the flat parameter and gradient buffers occupied at the points ZeRO samples (each
 * unit gathered, each gradient bucket reduced): what {@code tessera bench memory} reports. Sampling asks the
 * kernel which pages are resident, so only benchmarks turn it on.
 */
public final class MemoryProbe {

    /** Samples nothing. */
    public static final MemoryProbe OFF = new MemoryProbe(false);

    private final boolean enabled;
    private long peakParamBytes;
    private long peakGradBytes;

    private MemoryProbe(boolean enabled) {
        this.enabled = enabled;
    }

    public static MemoryProbe on() {
        return new MemoryProbe(true);
    }

    void sample(ZeroSharding zero) {
        if (!enabled) {
            return;
        }
        long[] bytes = zero.residentBytes();
        peakParamBytes = Math.max(peakParamBytes, bytes[0]);
        peakGradBytes = Math.max(peakGradBytes, bytes[1]);
    }

    public long peakParamBytes() {
        return peakParamBytes;
    }

    public long peakGradBytes() {
        return peakGradBytes;
    }
}
