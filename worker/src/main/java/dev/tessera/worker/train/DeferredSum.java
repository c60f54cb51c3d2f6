package dev.tessera.worker.train;

/**
 * Sums one number over the replicas in the background: started when a step has its loss, awaited after the next
 * step has computed. A step's global loss is only reported, so no step needs to wait for it; summing it at once
 * put a round trip over the data-parallel link into every step, behind whatever bulk data the link carried (CO2's
 * averages on a slow link: docs/PERFORMANCE.md, "CO2 at tau 3 meets issue 19's four lines").
 * At most one sum is in flight.
 */
public interface DeferredSum {

    /** Starts summing {@code value} over the replicas. */
    void start(double value);

    /** Waits for the sum started last and returns it; every replica gets the same bits. */
    double await();

    /** One replica: the value is its own sum. */
    static DeferredSum local() {
        return new DeferredSum() {
            private double value;

            @Override
            public void start(double v) {
                value = v;
            }

            @Override
            public double await() {
                return value;
            }
        };
    }
}
