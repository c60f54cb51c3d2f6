package dev.tessera.comm;

/** Element-wise reductions. {@link #AVG} is the sum divided by the group size (floating point only). */
public enum ReduceOp {
    SUM, AVG, MAX
}
