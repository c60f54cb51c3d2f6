package dev.tessera.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How MoE rows reach their experts and come back (ALGORITHMS.md 7.4). After routing, the layer gathers one row
 * per kept (token, slot), grouped by global expert in expert order. Expert parallelism sends each group to the
 * rank of the expert group that holds the expert, by all-to-all, and the results back the same way; the rows a
 * rank's experts run arrive grouped by held expert, each expert's rows in the order of the sending ranks (so in
 * global token order, as in one process). Forward sends the inputs and returns the outputs; backward sends the
 * outputs' gradients and returns the inputs' in the layout the forward planned.
 * {@link #LOCAL} is a rank that holds every expert: nothing moves, and the expert rows are the gathered rows.
 */
public interface TokenDispatch {

    /** {@link #plan}'s capacity when the gate drops nothing: rows travel in uneven blocks of their true counts. */
    int DROPLESS = -1;

    /** One held expert's work on its rows of a round trip's expert buffers. */
    interface ExpertStep {
        void run(int heldExpert);
    }

    /** Every expert on this rank. */
    TokenDispatch LOCAL = new TokenDispatch() {
        @Override
        public boolean movesRows() {
            return false;
        }

        @Override
        public int plan(int[] rowsPerExpert, int capacity, int[] rowsPerHeldExpert) {
            System.arraycopy(rowsPerExpert, 0, rowsPerHeldExpert, 0, rowsPerHeldExpert.length);
            int rows = 0;
            for (int r : rowsPerExpert) {
                rows += r;
            }
            return rows;
        }

        @Override
        public void roundTrip(INDArray rows, INDArray expertRows, int heldExperts, ExpertStep step,
                              INDArray expertResults, INDArray results) {
            for (int i = 0; i < heldExperts; i++) {
                step.run(i);
            }
        }

        @Override
        public long sentBytes() {
            return 0;
        }

        @Override
        public long waitedNanos() {
            return 0;
        }
    };

    /** Whether rows leave this rank: if not, the expert rows are the gathered rows themselves. */
    boolean movesRows();

    /**
     * Plans the forward's exchange: {@code rowsPerExpert[e]} gathered rows for each global expert, at most
     * {@code capacity} each (the fixed layout of §7.4, every expert padded to {@code capacity} rows), or
     * {@link #DROPLESS}. Fills {@code rowsPerHeldExpert} with the rows each held expert will run (padding included)
     * and returns their total, which the expert-row buffers must hold.
     */
    int plan(int[] rowsPerExpert, int capacity, int[] rowsPerHeldExpert);

    /**
     * One trip, as last planned: rows [N*k, C] grouped by expert go to expertRows [R, C] grouped by held expert;
     * {@code step} runs each of the {@code heldExperts} on its rows there, into its rows of expertResults [R, C];
     * those come back into results [N*k, C], in rows' layout. Each held expert runs once, on all its rows, so how
     * the trip is cut up never changes a result.
     */
    void roundTrip(INDArray rows, INDArray expertRows, int heldExperts, ExpertStep step, INDArray expertResults,
                   INDArray results);

    /** Bytes of rows sent to other ranks so far (a running total). */
    long sentBytes();

    /** Nanoseconds this rank waited for exchanges so far (a running total): the time they held the step up. */
    long waitedNanos();
}
