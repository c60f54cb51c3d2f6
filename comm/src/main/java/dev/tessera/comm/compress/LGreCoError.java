package dev.tessera.comm.compress;

/**
 * What L-GreCo adds up per layer as a candidate's error (ALGORITHMS.md 4, "Definitions"): the squared L2 norm of the
 * compression error, whose sum is the squared error of the whole gradient, or the norm itself, which the paper's
 * wording also allows. The solver is the same for both; only the numbers fed to it differ. Under the norm a layer
 * with large gradients weighs by its scale, not its square, so it buys less coarse compression for the others.
 */
public enum LGreCoError {
    SQUARED, NORM;

    /** The error the solver sees for a measured squared error. */
    public double of(double squaredError) {
        return this == SQUARED ? squaredError : Math.sqrt(squaredError);
    }
}
