package dev.tessera.worker.run;

import dev.tessera.comm.DriverMode;
import dev.tessera.comm.Transport;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The command line a coordinator gives a worker process: {@code --key value} pairs. The job token is not
 * among them (command lines are visible to every user of the host); it comes in {@code TESSERA_JOB_TOKEN}.
 * Where the worker runs comes from its launcher: {@code bindAddress} is the one address it binds for Hazelcast
 * and Aeron UDP (and publishes in the rendezvous), {@code seeds} the job's Hazelcast members as "host:port", and
 * {@code driver} whether it uses its host's shared media driver in {@code aeronDir} or runs its own there.
 */
public record WorkerArgs(String jobId, int rank, int world, String hostId, int hazelcastPort, String aeronDir,
                         int aeronPort, long deadlineMs, Transport transport, String bindAddress, List<String> seeds,
                         DriverMode driver) {

    public WorkerArgs {
        seeds = List.copyOf(seeds);
    }

    public List<String> toList() {
        List<String> out = new ArrayList<>();
        put(out, "job-id", jobId);
        put(out, "rank", rank);
        put(out, "world", world);
        put(out, "host-id", hostId);
        put(out, "hazelcast-port", hazelcastPort);
        put(out, "aeron-dir", aeronDir);
        put(out, "aeron-port", aeronPort);
        put(out, "deadline-ms", deadlineMs);
        put(out, "transport", transport);
        put(out, "bind-address", bindAddress);
        put(out, "seeds", String.join(",", seeds));
        put(out, "driver", driver);
        return out;
    }

    public static WorkerArgs parse(String[] args) {
        Map<String, String> map = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --key value pairs, got '" + args[i] + "'");
            }
            map.put(args[i].substring(2), args[i + 1]);
        }
        return new WorkerArgs(get(map, "job-id"), Integer.parseInt(get(map, "rank")), Integer.parseInt(get(map, "world")),
                get(map, "host-id"), Integer.parseInt(get(map, "hazelcast-port")), get(map, "aeron-dir"),
                Integer.parseInt(get(map, "aeron-port")), Long.parseLong(get(map, "deadline-ms")),
                Transport.valueOf(get(map, "transport")), get(map, "bind-address"),
                Arrays.asList(get(map, "seeds").split(",")), DriverMode.valueOf(get(map, "driver")));
    }

    private static String get(Map<String, String> map, String key) {
        String v = map.get(key);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + key);
        }
        return v;
    }

    private static void put(List<String> out, String key, Object value) {
        out.add("--" + key);
        out.add(String.valueOf(value));
    }
}
