package dev.tessera.coordinator.launch;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One host of a cluster file: where it is, how to reach it, and how many workers it runs. A local host runs its
 * workers as child processes of the coordinator; any other is reached with OpenSSH in batch mode (keys only, never
 * a password prompt).
 *
 * @param name         the host's name in the cluster file, shown in log prefixes ("[rank 1@host-b]")
 * @param address      the address the host's workers bind and the others reach them at
 * @param ssh          how to log in; null for the local host
 * @param workers      the worker processes it runs
 * @param distribution the folder on the host that holds the distribution's {@code lib/}; null for the local host,
 *                     which runs the coordinator's own class path
 * @param java         the java command on the host
 */
public record ClusterHost(String name, String address, Ssh ssh, int workers, String distribution, String java) {

    /** OpenSSH's login: {@code ssh -i key -p port [options] user@address}. */
    public record Ssh(String user, Path key, int port, List<String> options) {

        public Ssh {
            options = List.copyOf(options);
        }

        /** The ssh client's command that runs {@code remoteCommand} on {@code address}, never asking anything. */
        public List<String> command(String address, String remoteCommand) {
            List<String> command = new ArrayList<>(List.of("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                    "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-i", key.toString(),
                    "-p", Integer.toString(port)));
            for (String option : options) {
                command.add("-o");
                command.add(option);
            }
            command.add(user + "@" + address);
            command.add(remoteCommand);
            return command;
        }
    }

    public boolean local() {
        return ssh == null;
    }

    /** "host-b (root@198.18.7.3)" in messages. */
    public String describe() {
        return local() ? name + " (this machine)" : name + " (" + ssh.user() + "@" + address + ")";
    }
}
