/**
 * The job spec: one typed value ({@link dev.tessera.worker.job.JobConfig} and its sections) that the coordinator
 * binds from YAML and {@code --set} flags, validates, writes into the run directory and sends to every worker.
 * Each section is a record; its components are the section's keys in declaration order, named in snake_case
 * ({@link dev.tessera.worker.job.SpecFields}), so a new key is one new component with its default.
 */
package dev.tessera.worker.job;
