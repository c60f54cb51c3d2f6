/**
 * One replica's side of a job: the job description a worker receives, building the replica (data, model,
 * optimizer, resume), training it, and the worker process that does so under a coordinator.
 */
package dev.tessera.worker.run;
