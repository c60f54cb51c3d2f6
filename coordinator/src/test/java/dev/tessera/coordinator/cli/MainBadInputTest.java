package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.TrainRequest;
import dev.tessera.coordinator.run.RunSummary;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

/**
 * Every kind of bad input exits 2 with exactly one line on stderr, "tessera: ...", naming the key, flag or file.
 * In the arguments, {config} is a file holding the case's YAML and {tmp} a scratch directory.
 */
class MainBadInputTest {

    @TempDir
    Path tmp;

    private final AtomicBoolean trainCalled = new AtomicBoolean();

    private RunSummary recordTraining(TrainRequest request) {
        trainCalled.set(true);
        return MainTrainTest.summaryOf(request);
    }

    static Stream<Arguments> badInputs() {
        return Stream.of(
                arguments("bad YAML syntax", "model:\n  d_model: [64, 128\n", "train --config {config}",
                        "job.yaml:3:1: invalid YAML"),
                arguments("YAML tab indentation", "model:\n\td_model: 64\n", "train --config {config}",
                        "job.yaml:2:1: invalid YAML"),
                arguments("unknown top-level key", "modle:\n  d_model: 64\n", "train --config {config}",
                        "job.yaml:1:1: unknown key 'modle' (did you mean 'model'?); allowed keys at the top level"),
                arguments("unknown nested key", "train:\n  stepz: 5\n", "train --config {config}",
                        "job.yaml:2:3: unknown key 'train.stepz' (did you mean 'train.steps'?); allowed keys in train: "
                                + "steps, batch_size"),
                arguments("wrong type in file", "train:\n  steps: many\n", "train --config {config}",
                        "job.yaml:2:3: train.steps must be an integer (got string 'many')"),
                arguments("section given a scalar", "model: 5\n", "train --config {config}",
                        "job.yaml:1:1: 'model' must be a mapping"),
                arguments("top level not a mapping", "- 1\n- 2\n", "train --config {config}",
                        "job.yaml:1:1: the top level must be a mapping"),
                arguments("duplicate key", "train:\n  steps: 5\n  steps: 6\n", "train --config {config}",
                        "duplicate key 'train.steps'"),
                arguments("suspect limit zero", null, "train --set fault.suspect_after_s=0",
                        "--set fault.suspect_after_s=0: fault.suspect_after_s must be >= 1 (got 0)"),
                arguments("dead limit not above the suspect limit", null, "train --set fault.dead_after_s=60",
                        "--set fault.dead_after_s=60: fault.dead_after_s (60) must be greater than"
                                + " fault.suspect_after_s (60)"),
                arguments("dead limit of days", null, "train --set fault.dead_after_s=100000",
                        "fault.dead_after_s must be <= 86400 (got 100000)"),
                arguments("negative lr", null, "train --set optimizer.lr=-0.1",
                        "--set optimizer.lr=-0.1: optimizer.lr must be > 0 (got -0.1)"),
                arguments("d_model not divisible by n_heads", null, "train --set model.d_model=130",
                        "model.d_model (130) must be divisible by model.n_heads (4)"),
                arguments("top_k > n_experts", null, "train --set model.top_k=8",
                        "model.top_k (8) must be <= model.n_experts (4)"),
                arguments("a gate that does not exist", null, "train --set model.gate=hash",
                        "model.gate must be one of topk, switch, gshard, hyper (got string 'hash')"),
                arguments("hyper gate without a hypernetwork size", null, "train --set model.gate=hyper",
                        "model.gate: hyper needs model.hyper_size"),
                arguments("capacity factor not positive", null, "train --set model.capacity_factor=0",
                        "model.capacity_factor must be > 0 (got 0.0)"),
                arguments("eval capacity factor not positive", null, "train --set model.eval_capacity_factor=-1",
                        "model.eval_capacity_factor must be > 0 (got -1.0)"),
                arguments("switch with top_k 2", null, "train --set model.gate=switch",
                        "model.top_k must be 1 for model.gate: switch (got 2)"),
                arguments("negative z-loss weight", null, "train --set model.router_z_coef=-1",
                        "model.router_z_coef must be >= 0 (got -1.0)"),
                arguments("MoE with one expert", null, "train --set model.n_experts=1", "model.n_experts must be >= 2"),
                arguments("sequence length not divisible by sp", null,
                        "train --set mesh.dp=1 --set mesh.sp=3 --set mesh.sp_mode=ulysses",
                        "train.seq_len (128) must be divisible by mesh.sp (3)"),
                arguments("heads not divisible by sp for ulysses", null,
                        "train --set mesh.dp=1 --set mesh.sp=8 --set mesh.sp_mode=ulysses",
                        "model.n_heads (4) must be divisible by mesh.sp (8) for mesh.sp_mode: ulysses"),
                arguments("a sequence-parallel scheme that does not exist", null, "train --set mesh.sp_mode=striped",
                        "mesh.sp_mode must be one of allgather, ring, ulysses (got string 'striped')"),
                arguments("a compression method that does not exist", null,
                        "train --set compression.method=zip",
                        "compression.method must be one of none, topk, qsgd, powersgd, fedzip (got string 'zip')"),
                arguments("a Top-K density outside (0, 1]", null, "train --set compression.topk_density=0",
                        "compression.topk_density must be in (0, 1] (got 0.0)"),
                arguments("an L-GreCo budget of nothing", null, "train --set compression.lgreco_slack=-1",
                        "compression.lgreco_slack must be > -1"),
                arguments("an L-GreCo error measure that does not exist", null,
                        "train --set compression.lgreco_error=cubed",
                        "compression.lgreco_error must be one of squared, norm (got string 'cubed')"),
                arguments("compression with ZeRO-3", null,
                        "train --set compression.method=topk --set zero.stage=3",
                        "compression.method: topk works with zero.stage 0, 1 or 2"),
                arguments("compression with expert parallelism", null,
                        "train --set compression.method=topk --set mesh.dp=2 --set mesh.ep=2 --set model.n_experts=4",
                        "compression.method: topk compresses data-parallel gradients only"),
                arguments("co2 tau zero", null, "train --set co2.tau=0", "co2.tau must be >= 1 (got 0)"),
                arguments("co2 outer lr zero", null, "train --set co2.outer_lr=0",
                        "co2.outer_lr must be > 0 (got 0.0)"),
                arguments("co2 outer momentum one", null, "train --set co2.outer_momentum=1",
                        "co2.outer_momentum must be in [0, 1) (got 1.0)"),
                arguments("co2 gap penalty negative", null, "train --set co2.gap_penalty=-1",
                        "co2.gap_penalty must be > 0 (got -1.0)"),
                arguments("co2 gap penalty mode that does not exist", null, "train --set co2.gap_penalty_mode=layer",
                        "co2.gap_penalty_mode must be one of constant, gap_scaled (got string 'layer')"),
                arguments("co2 clip not a boolean", null, "train --set co2.clip=sometimes", "co2.clip must be"),
                arguments("co2 clip threshold zero", null, "train --set co2.clip_threshold=0",
                        "co2.clip_threshold must be > 0 (got 0.0)"),
                arguments("co2 enabled not a boolean", null, "train --set co2.enabled=2", "co2.enabled must be"),
                arguments("co2 with ZeRO", null, "train --set co2.enabled=true --set zero.stage=1",
                        "co2 with zero.stage 1 is not built yet (issue 19)"),
                arguments("co2 with expert parallelism", null,
                        "train --set co2.enabled=true --set mesh.dp=2 --set mesh.ep=2 --set model.n_experts=4",
                        "co2 with mesh.sp or mesh.ep > 1 is not built yet (issue 19)"),
                arguments("co2 sharded outer state with compression", null, "train --set co2.enabled=true"
                                + " --set co2.shard_outer_state=true --set compression.method=topk",
                        "co2.shard_outer_state with compression is not built yet (issue 19)"),
                arguments("co2 sharded outer state keeping local progress", null,
                        "train --set co2.enabled=true --set co2.shard_outer_state=true"
                                + " --set co2.keep_local_progress=true",
                        "co2.shard_outer_state with co2.keep_local_progress is not built yet (issue 19)"),
                arguments("co2 shard outer state not a boolean", null, "train --set co2.shard_outer_state=half",
                        "co2.shard_outer_state must be"),
                arguments("missing config file", null, "train --config {tmp}/nope.yaml",
                        "nope.yaml: config file not found"),
                arguments("config is a directory", null, "train --config {tmp}", "is a directory"),
                arguments("--set without =", null, "train --set train.steps", "--set train.steps: expected key=value"),
                arguments("--set unknown key", null, "train --set train.lr=0.1",
                        "unknown key 'train.lr'; allowed keys in train"),
                arguments("--set wrong type", null, "train --set eval.every=often",
                        "eval.every must be an integer (got string 'often')"),
                arguments("text source without path", null, "train --set data.source=text",
                        "data.source is text but data.path is not set"),
                arguments("text file missing", null, "train --set data.source=text --set data.path={tmp}/corpus.txt",
                        "data.path '"),
                arguments("warmup > steps", null, "train --set train.steps=10",
                        "optimizer.warmup_steps (100) must be <= train.steps (10)"),
                arguments("unknown optimizer", "optimizer:\n  name: sgd\n", "train --config {config}",
                        "job.yaml:2:3: optimizer.name must be one of adamw"),
                arguments("adafactor warmup_init without relative_step", null,
                        "train --set optimizer.name=adafactor --set optimizer.adafactor.relative_step=false"
                        + " --set optimizer.adafactor.warmup_init=true",
                        "optimizer.adafactor.warmup_init: true requires optimizer.adafactor.relative_step: true"),
                arguments("min_lr > lr", null, "train --set optimizer.min_lr=0.1", "optimizer.min_lr (0.1)"),
                arguments("val_fraction out of range", null, "train --set data.val_fraction=0",
                        "data.val_fraction must be strictly between 0 and 1"),
                arguments("vocab not byte-sized", null, "train --set model.vocab_size=1000",
                        "model.vocab_size must be 256"),
                arguments("negative eval interval", null, "train --set eval.every=-5", "eval.every must be >= 0"),
                arguments("bad dtype", null, "train --set model.dtype=fp8", "model.dtype must be one of float32, float64"),
                arguments("model whose size overflowed long", null,
                        "train --set model.d_model=2147463584 --set model.d_ff=715885514",
                        "parameter model.embed_tokens.weight [256, 2147463584] would take 2199002710016 bytes, over"
                        + " the 2147483647 bytes one tensor can hold (a JDK limit: the kernels view it through one"
                        + " ByteBuffer, which an int indexes); lower model.d_model"),
                arguments("one tensor over the buffer limit", null, "train --set model.d_ff=1048576000",
                        "parameter model.layers.0.mlp.gate_proj.weight [1048576000, 128] would take 536870912000 bytes,"
                        + " over the 2147483647 bytes one tensor can hold"),
                arguments("tokens per rank overflowing int", null,
                        "train --set train.batch_size=65536 --set train.seq_len=65536",
                        "(attention scores) would take 2251799813685248 bytes"),
                arguments("decay_1d not a boolean", null, "train --set optimizer.decay_1d=norms",
                        "optimizer.decay_1d must be"),
                arguments("unknown transport", null, "train --set launch.transport=tcp",
                        "launch.transport must be one of auto, ipc, udp (got string 'tcp')"),
                arguments("unknown CLI option", null, "train --bogus", "Unknown option: '--bogus'"),
                arguments("option missing its value", null, "train --config", "--config"),
                arguments("unknown command", null, "trian", "'trian'; did you mean train?"),
                arguments("no command", null, "", "missing command"),
                arguments("resume of a non-run", null, "train --resume {tmp}", ": not a Tessera run"),
                arguments("resume of a missing dir", null, "train --resume {tmp}/gone", "no such directory"),
                arguments("bench without target", null, "bench", "missing benchmark; one of: model"),
                arguments("bench unknown preset", null, "bench model --preset huge", "--preset"),
                arguments("bench missing preset", null, "bench model", "--preset"),
                arguments("bench zero steps", null, "bench model --preset dense --steps 0", "--steps must be >= 1"),
                arguments("bench train uneven dp", null, "bench train --preset dense --dp 3",
                        "--dp must divide the global batch of 8 of preset dense (got 3)"),
                arguments("bench co2 zero tau", null, "bench co2 --tau 1,0", "--tau must be >= 1 (got 0)"),
                arguments("bench co2 zero steps", null, "bench co2 --steps 0", "--steps must be >= 1 (got 0)"),
                arguments("bench co2 rate without a unit", null, "bench co2 --rate 100",
                        "--rate '100': a number and bit, kbit, mbit or gbit (as 100mbit), or none"),
                arguments("bench co2 tau not a number", null, "bench co2 --tau three", "--tau"),
                arguments("bench co2 unknown compression", null, "bench co2 --compression zip",
                        "--compression 'zip': one of none, topk, qsgd, powersgd, fedzip"),
                arguments("cluster file unknown key", "hosts:\n  here: {local: true}\nhostz: 1\n", "launch {config}",
                        "job.yaml:3:1: unknown key 'hostz' (did you mean 'hosts'?); allowed keys at the top level"),
                arguments("cluster file missing key file", "hosts:\n  b:\n    address: 198.18.0.2\n"
                        + "    ssh: {user: u, key: none}\n    distribution: /opt/t\n", "launch {config}",
                        "job.yaml:4:20: hosts.b.ssh.key: {tmp}/none does not exist"),
                arguments("cluster file bad address", "hosts:\n  b: {address: host-b, ssh: {user: u, key: none}}\n",
                        "launch {config}", "hosts.b.address: 'host-b' is not a literal IPv4 or IPv6 address"),
                arguments("cluster file missing", null, "launch {tmp}/none.yaml", "cluster file {tmp}/none.yaml cannot"
                        + " be read"),
                arguments("cluster file hosts fewer than ranks",
                        "hosts:\n  here: {local: true}\njob:\n  set: {mesh.dp: 2}\n", "launch {config}",
                        "job.yaml: hosts run 1 workers but the job's mesh has 2 ranks"),
                arguments("cluster file job key unknown", "hosts:\n  here: {local: true}\njob:\n  set: {mesh.dq: 1}\n",
                        "launch {config}", "job.yaml:4:9: unknown key 'mesh.dq' (did you mean 'mesh.dp'?)"));
    }

    /** The cluster launcher needs the hosts of a cluster file, which only tessera launch reads. */
    @Test
    void trainRefusesTheClusterLauncherBeforeMakingARun() {
        Path run = tmp.resolve("run");
        CliRunner result = CliRunner.run("train", "--set", "launch.launcher=cluster", "--set", "mesh.dp=2",
                "--out", run.toString());
        assertEquals(2, result.exitCode(), result.err());
        assertEquals("tessera: launch.launcher: cluster runs on the hosts of a cluster file: start it with ./tessera"
                + " launch CLUSTER.yaml (see deploy/clusters), or set launch.launcher: local", result.err().strip());
        assertFalse(Files.exists(run), "no run directory for a refused job");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badInputs")
    void exitsTwoWithOneLineNamingTheProblem(String name, String yaml, String argLine, String expected)
            throws Exception {
        Path config = tmp.resolve("job.yaml");
        if (yaml != null) {
            Files.writeString(config, yaml);
        }
        String[] args = argLine.isEmpty() ? new String[0] : Arrays.stream(argLine.split(" "))
                .map(a -> a.replace("{config}", config.toString()).replace("{tmp}", tmp.toString()))
                .toArray(String[]::new);

        CliRunner result = CliRunner.training(this::recordTraining, args);

        assertEquals(2, result.exitCode(), () -> name + ": " + result.err());
        assertTrue(result.err().startsWith("tessera: "), result.err());
        assertEquals(1, result.err().lines().count(), () -> "one line expected: " + result.err());
        String want = expected.replace("{tmp}", tmp.toString());
        assertTrue(result.err().contains(want), () -> "'" + result.err().strip() + "' lacks '" + want + "'");
        assertFalse(result.err().contains("\tat "), "no stack trace");
        assertFalse(trainCalled.get(), "training must not start on bad input");
    }
}
