package dev.tessera.comm;

/**
 * Where one rank listens. {@code hostId} decides IPC vs UDP (same id: same host, same shared driver);
 * {@code address} and {@code port} form its UDP endpoint.
 */
public record PeerEndpoint(int rank, String hostId, String address, int port) {

    public String udpEndpoint() {
        return address + ":" + port;
    }
}
