/**
 * Files that must survive a crash: {@link dev.tessera.worker.io.AtomicFiles} writes, renames and deletes so that
 * a reader sees the old or the complete new content. Checkpoints use it here, the coordinator for the run's
 * files.
 */
package dev.tessera.worker.io;
