package dev.tessera.coordinator.cli;

import dev.tessera.comm.DriverMode;
import dev.tessera.comm.Transport;
import dev.tessera.coordinator.CommBench;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/** {@code tessera bench comm}: collective latency and bus bandwidth between worker processes on this host. */
@Command(name = "comm", mixinStandardHelpOptions = true,
        description = "Time all-reduce, reduce-scatter, all-gather and all-to-all between N local processes.")
public final class BenchCommCommand implements Callable<Integer> {

    /** How the Aeron media driver is deployed for the benchmark. */
    enum Driver {
        shared(DriverMode.SHARED_PER_HOST), per_process(DriverMode.PER_PROCESS);

        final DriverMode mode;

        Driver(DriverMode mode) {
            this.mode = mode;
        }
    }

    @Spec
    CommandSpec spec;

    @Option(names = "--ranks", required = true, paramLabel = "N", description = "Worker processes (2-16).")
    int ranks;

    @Option(names = "--transport", paramLabel = "ipc|udp", defaultValue = "ipc",
            description = "IPC through the shared driver, or UDP on 127.0.0.1 (default: ${DEFAULT-VALUE}).")
    Transport transport;

    @Option(names = "--driver", paramLabel = "shared|per_process", defaultValue = "shared",
            description = "One media driver for all ranks, or one per process (UDP only) (default: ${DEFAULT-VALUE}).")
    Driver driver;

    @Option(names = "--max-bytes", paramLabel = "B", defaultValue = "268435456",
            description = "Largest payload; sizes go from 4 KB up by 4x (default: ${DEFAULT-VALUE}).")
    long maxBytes;

    @Option(names = "--buffers", paramLabel = "symmetric|plain", defaultValue = "symmetric",
            description = "Buffers in the group's symmetric memory (what the trainer uses; on one host the "
                    + "collectives read peers' memory directly) or plain direct buffers (copied through Aeron) "
                    + "(default: ${DEFAULT-VALUE}).")
    CommBench.Buffers buffers;

    @Option(names = "--json", description = "One JSON object per line.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        return CommBench.run(ranks, transport == Transport.AUTO ? Transport.IPC : transport, driver.mode, buffers,
                json, maxBytes, spec.commandLine().getOut());
    }
}
