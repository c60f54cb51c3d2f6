package dev.tessera.comm;

/**
 * How frames travel between two processes. {@link #AUTO} picks IPC when both share a host (and so a media
 * driver) and UDP otherwise.
 */
public enum Transport {
    AUTO, IPC, UDP
}
