/**
 * Which OpenBLAS kernel a process computes with: chosen from the CPU's flags before the library loads, read
 * back and checked once after.
 */
package dev.tessera.worker.blas;
