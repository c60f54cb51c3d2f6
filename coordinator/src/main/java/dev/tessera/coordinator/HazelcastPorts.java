package dev.tessera.coordinator;

import dev.tessera.comm.UserInputException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;

/**
 * Checks the job's Hazelcast ports before joining. A member contacts every port of the range, and one that
 * another program holds answers without ever completing the join; a taken port is the user's to change.
 */
final class HazelcastPorts {

    private HazelcastPorts() {
    }

    /** Throws naming {@code launch.hazelcast_port} when any port of {@code [first, first + count)} is taken. */
    static void requireFree(String host, int first, int count) {
        for (int port = first; port < first + count; port++) {
            try (ServerSocket probe = new ServerSocket()) {
                probe.setReuseAddress(true); // as Hazelcast binds: a closed job's TIME_WAIT sockets do not count
                probe.bind(new InetSocketAddress(InetAddress.getByName(host), port));
            } catch (IOException taken) {
                throw new UserInputException("launch.hazelcast_port: port " + port + " of the job's range " + first
                        + ".." + (first + count - 1) + " is already in use on " + host + " (" + taken.getMessage()
                        + "); stop what listens there or set launch.hazelcast_port to the first of " + count
                        + " free ports");
            }
        }
    }
}
