package dev.tessera.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How MoE rows reach their experts and come back. After routing, the layer gathers one row per (token, slot),
 * grouped by expert in expert order; expert parallelism sends each group to the rank that owns the expert by
 * all-to-all over the expert group and the results back the same way (DESIGN.md, the mesh). Forward sends the
 * inputs and returns the outputs; backward sends the outputs' gradients and returns the inputs'.
 * {@link #LOCAL} is a rank that owns every expert: nothing moves.
 */
public interface TokenDispatch {

    /** Every expert on this rank. */
    TokenDispatch LOCAL = new TokenDispatch() {
        @Override
        public void toExperts(INDArray rows, int[] rowsPerExpert) {
        }

        @Override
        public void fromExperts(INDArray rows, int[] rowsPerExpert) {
        }
    };

    /** rows: [N*k, C] grouped by expert, {@code rowsPerExpert[e]} rows for expert e; on to the experts' owners. */
    void toExperts(INDArray rows, int[] rowsPerExpert);

    /** The experts' rows [N*k, C] back to the ranks whose tokens they are, in the layout {@link #toExperts} got. */
    void fromExperts(INDArray rows, int[] rowsPerExpert);
}
