package dev.tessera.coordinator.config;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Whether {@code launch.bind_address} is an address this host can bind and others can reach it at: a literal IPv4
 * or IPv6 address (a host name would be resolved differently on every host, or not at all) held by one of this
 * host's interfaces. Anything in 127.0.0.0/8 counts, as Linux routes the whole block to {@code lo}.
 */
final class BindAddress {

    private static final Pattern IPV4 = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");

    private BindAddress() {
    }

    /** What is wrong with {@code value}, as the end of a sentence that starts with the key; empty if nothing. */
    static Optional<String> problem(String value) {
        Optional<String> notLiteral = literalProblem(value);
        if (notLiteral.isPresent()) {
            return notLiteral;
        }
        InetAddress address;
        try {
            address = InetAddress.getByName(value); // a literal: parsed, never looked up
        } catch (UnknownHostException e) {
            return Optional.of("'" + value + "' is not a valid IP address");
        }
        if (address.isAnyLocalAddress()) {
            return Optional.of("'" + value + "' is the wildcard address, which others cannot reach this host at");
        }
        if (address instanceof Inet4Address && address.isLoopbackAddress()) {
            return Optional.empty();
        }
        try {
            if (NetworkInterface.getByInetAddress(address) != null) {
                return Optional.empty();
            }
        } catch (SocketException e) {
            return Optional.of("'" + value + "' cannot be checked against this host's interfaces: " + e.getMessage());
        }
        return Optional.of("'" + value + "' is not an address of any interface of this host");
    }

    /**
     * What is wrong with {@code value} as a literal IP address of any host (another host's addresses cannot be checked
     * from here), as the end of a sentence that starts with the key; empty if nothing.
     */
    static Optional<String> literalProblem(String value) {
        if (value == null || value.isBlank()) {
            return Optional.of("is not set");
        }
        boolean v4 = IPV4.matcher(value).matches();
        if (!v4 && !IPV6.matcher(value).matches()) {
            return Optional.of("'" + value + "' is not a literal IPv4 or IPv6 address (host names are not resolved)");
        }
        if (v4 && !Arrays.stream(value.split("\\.")).allMatch(octet -> Integer.parseInt(octet) <= 255)) {
            return Optional.of("'" + value + "' is not a valid IPv4 address");
        }
        try {
            InetAddress address = InetAddress.getByName(value); // a literal: parsed, never looked up
            return address.isAnyLocalAddress() ? Optional.of("'" + value + "' is the wildcard address, which no one"
                    + " can reach a host at") : Optional.empty();
        } catch (UnknownHostException e) {
            return Optional.of("'" + value + "' is not a valid IP address");
        }
    }

    /** The addresses of this host's interfaces that are up, but loopback and link-local ones. */
    static List<String> ofThisHost() {
        List<String> out = new ArrayList<>();
        try {
            for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                if (!nic.isUp()) {
                    continue;
                }
                for (InetAddress a : Collections.list(nic.getInetAddresses())) {
                    if (!a.isLinkLocalAddress() && !a.isLoopbackAddress()) {
                        String text = a.getHostAddress();
                        int scope = text.indexOf('%'); // an IPv6 address's interface, which the key does not take
                        out.add(scope < 0 ? text : text.substring(0, scope));
                    }
                }
            }
        } catch (SocketException e) {
            // the message then lists none
        }
        return out;
    }
}
