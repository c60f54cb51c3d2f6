package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.SeqBench;
import dev.tessera.worker.job.ActivationCheckpointing;
import dev.tessera.worker.parallel.SequenceScheme;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code tessera bench seq}: the dense preset's model on long sequences, for each sequence length, sequence-parallel
 * width and scheme, one JSON object per line; with {@code --longest-within-mb}, also the longest sequence that trains
 * within that much memory per worker for each width and scheme.
 */
@Command(name = "seq", mixinStandardHelpOptions = true,
        description = "Time sequence-parallel training on long sequences (the dense preset's model) on worker"
                + " processes, and find the longest sequence that fits a memory budget.")
public final class BenchSeqCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--seq", split = ",", paramLabel = "T[,T...]", defaultValue = "2048,4096,8192",
            description = "Sequence lengths to time; 0 times none (with --longest-within-mb) (default: ${DEFAULT-VALUE}).")
    List<Integer> seqs;

    @Option(names = "--sp", split = ",", paramLabel = "N[,N...]", defaultValue = "1,2",
            description = "Sequence-parallel widths; 1 is one worker holding whole sequences (default: ${DEFAULT-VALUE}).")
    List<Integer> sps;

    @Option(names = "--mode", split = ",", paramLabel = "allgather|ring|ulysses", defaultValue = "allgather,ulysses",
            description = "Schemes for each width above 1, as mesh.sp_mode (default: ${DEFAULT-VALUE}).")
    List<SequenceScheme> modes;

    @Option(names = "--dp", paramLabel = "N", defaultValue = "1",
            description = "Data-parallel width of every run, as mesh.dp (default: ${DEFAULT-VALUE}).")
    int dp;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "1",
            description = "Sequences per step, as train.batch_size (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "3",
            description = "Timed steps after 2 warm-up steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--activation-checkpointing", paramLabel = "none|blocks|every_k", defaultValue = "none",
            description = "As train.activation_checkpointing (default: ${DEFAULT-VALUE}).")
    ActivationCheckpointing checkpointing;

    @Option(names = "--longest-within-mb", paramLabel = "MB", defaultValue = "0",
            description = "Also find the longest sequence (in steps of 1024 tokens) that trains within MB per worker,"
                    + " for each width and scheme: the planner proposes, one training step confirms the measured"
                    + " peak; 0: skip (default: ${DEFAULT-VALUE}).")
    int budgetMb;

    @Option(names = "--longest-up-to", paramLabel = "T", defaultValue = "65536",
            description = "The longest sequence --longest-within-mb tries (default: ${DEFAULT-VALUE}).")
    int longestLimit;

    @Option(names = "--worker-memory-mb", paramLabel = "MB", defaultValue = "20480",
            description = "launch.worker_memory_mb of the timed runs (default: ${DEFAULT-VALUE}).")
    int workerMemoryMb;

    @Option(names = "--json", description = "One JSON object per line instead of lines of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (steps < 1 || batch < 1 || dp < 1 || batch % dp != 0) {
            throw new ParameterException(spec.commandLine(), "--steps and --batch must be >= 1 and --dp must divide"
                    + " --batch (got steps " + steps + ", batch " + batch + ", dp " + dp + ")");
        }
        List<SeqBench.Setup> setups = new ArrayList<>();
        for (int seq : seqs) {
            if (seq == 0) {
                continue;
            }
            for (int sp : sps) {
                for (SequenceScheme mode : sp == 1 ? List.of(SequenceScheme.ALLGATHER) : modes) {
                    if (sp < 1 || seq % (sp == 1 ? 1 : mode.partsOf(sp)) != 0) {
                        throw new ParameterException(spec.commandLine(), "--seq " + seq + " does not cut into the "
                                + (sp == 1 ? 1 : mode.partsOf(sp)) + " equal parts of --sp " + sp + " with " + mode);
                    }
                    // Two steps before timing: the first ones compile the kernels and grow buffers.
                    setups.add(new SeqBench.Setup(seq, sp, dp, mode, batch, 2, steps, checkpointing));
                }
            }
        }
        for (SeqBench.Setup s : setups) {
            SeqBench.Result r = SeqBench.run(s, workerMemoryMb);
            print(json ? r.json() : r.describe());
        }
        if (budgetMb > 0) {
            for (int sp : sps) {
                for (SequenceScheme mode : sp == 1 ? List.of(SequenceScheme.ALLGATHER) : modes) {
                    SeqBench.Result r = SeqBench.longest(new SeqBench.Setup(1024, sp, dp, mode, batch, 0, 1,
                            checkpointing), (long) budgetMb << 20, 1024, longestLimit);
                    String name = sp == 1 ? "none" : mode.name().toLowerCase(Locale.ROOT);
                    print(json ? String.format(Locale.ROOT, "{\"longest_seq_within_mb\":%d,\"budget_mb\":%d,\"sp\":%d,"
                            + "\"mode\":\"%s\",\"run\":%s}", r == null ? 0 : r.setup().seq(), budgetMb, sp,
                            name, r == null ? "null" : r.json())
                            : String.format(Locale.ROOT, "sp %d, %s: longest sequence within %d MB per worker %d"
                            + " tokens", sp, name, budgetMb, r == null ? 0 : r.setup().seq()));
                }
            }
        }
        return 0;
    }

    private void print(String jsonLine) {
        System.out.println(jsonLine);
        System.out.flush();
    }
}
