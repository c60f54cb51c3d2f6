/**
 * One replica's side of a job: the job a worker receives (its spec is {@code worker.job}), building the replica (data, model,
 * optimizer, resume), training it, and the worker process that does so under a coordinator.
 */
package dev.tessera.worker.run;
