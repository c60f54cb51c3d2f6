package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.launch.NamespaceHosts;
import java.util.List;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

/**
 * The checks every bench on network-namespace hosts makes before it starts one: each {@code --rate} is one
 * {@code tc} understands (or none), and namespaces can be made here at all.
 */
final class NamespaceBenchChecks {

    private NamespaceBenchChecks() {
    }

    /** Fails with one line naming the bad rate, or why {@code command} cannot make namespaces on this machine. */
    static void require(CommandSpec spec, List<String> rates, String command) {
        for (String rate : rates) {
            if (!rate.equals("none") && !rate.matches("\\d+(bit|kbit|mbit|gbit)")) {
                throw new ParameterException(spec.commandLine(), "--rate '" + rate + "': a number and bit, kbit, mbit"
                        + " or gbit (as 100mbit), or none");
            }
        }
        NamespaceHosts.unavailableReason().ifPresent(why -> {
            throw new ParameterException(spec.commandLine(), command + " runs its workers in network namespaces, and"
                    + " cannot here: " + why);
        });
    }
}
