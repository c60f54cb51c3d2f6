/**
 * Parallel dimensions as the model sees them: the mesh's rank arithmetic, each rank's share of the batch,
 * the sequence and the experts, and the memory one rank needs. Each dimension is its own testable piece.
 */
package dev.tessera.worker.parallel;
