/**
 * The control plane's membership: an embedded Hazelcast member per process (coordinator and workers), joined
 * by TCP-IP on known addresses with multicast off, named after the job and its token so that nothing else can
 * join; rendezvous of Aeron endpoints; failure detection within seconds.
 */
package dev.tessera.worker.cluster;
