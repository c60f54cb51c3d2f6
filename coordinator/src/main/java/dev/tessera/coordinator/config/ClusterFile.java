package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.launch.ClusterHost;
import dev.tessera.coordinator.launch.ClusterLauncher;
import dev.tessera.coordinator.launch.Distribution;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.job.JobConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

/**
 * A cluster file ({@code deploy/clusters/*.yaml}): the hosts a job runs on and the job itself. Read as strictly as
 * the job YAML: an unknown key, a missing key file or an address that is not a literal IP is a one-line error at the
 * key. Paths in it are relative to the file's folder.
 * <pre>
 * coordinator: {address: 10.0.0.1}          # this machine, as the workers reach it (default 127.0.0.1)
 * distribution: ../target/tessera           # what is copied to the hosts (default: ./tessera's)
 * ports: {hazelcast: 5701, aeron: 40100}    # first ports of the job's ranges (default 0: picked at launch)
 * jvm_options: [-XX:+UseParallelGC]         # for every worker JVM
 * hosts:                                    # ranks in this order, host by host
 *   a: {local: true, workers: 1}
 *   b:
 *     address: 10.0.0.2
 *     workers: 1
 *     ssh: {user: tessera, key: ~/.ssh/id_ed25519, port: 22, options: [StrictHostKeyChecking=yes]}
 *     distribution: /opt/tessera            # where its copy lives
 *     java: java                            # its java command
 * job:
 *   config: ../../examples/jobs/quickstart.yaml
 *   set: {mesh.dp: 2}                       # as --set; the cluster's own launch keys are set after these
 * </pre>
 */
public final class ClusterFile {

    private static final List<String> TOP = List.of("coordinator", "distribution", "ports", "jvm_options", "hosts",
            "job");
    private static final List<String> HOST = List.of("local", "address", "workers", "ssh", "distribution", "java");
    private static final List<String> SSH = List.of("user", "key", "port", "options");

    private final Path file;
    private final String coordinatorAddress;
    private final String coordinatorOrigin;
    private final Path distribution;
    private final String distributionOrigin;
    private final List<ClusterHost> hosts;
    private final List<String> jvmOptions;
    private final Path jobConfig;
    private final List<ConfigOverride> jobSets;
    private final List<ConfigOverride> launchSets;
    private boolean checked;

    private ClusterFile(Path file, String coordinatorAddress, String coordinatorOrigin, Path distribution,
                        String distributionOrigin, List<ClusterHost> hosts, List<String> jvmOptions, Path jobConfig,
                        List<ConfigOverride> jobSets, List<ConfigOverride> launchSets) {
        this.file = file;
        this.coordinatorAddress = coordinatorAddress;
        this.coordinatorOrigin = coordinatorOrigin;
        this.distribution = distribution;
        this.distributionOrigin = distributionOrigin;
        this.hosts = hosts;
        this.jvmOptions = jvmOptions;
        this.jobConfig = jobConfig;
        this.jobSets = jobSets;
        this.launchSets = launchSets;
    }

    /** Reads and checks {@code file}; a {@link UserInputException} names the key and the fix. */
    public static ClusterFile load(Path file) {
        return load(file, Path.of(System.getProperty("user.home")));
    }

    /** As {@link #load(Path)}, with {@code ~} meaning {@code home}. */
    static ClusterFile load(Path file, Path home) {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new UserInputException("cluster file " + file + " cannot be read (" + e.getMessage()
                    + "); give a path to a cluster YAML such as deploy/clusters/local.yaml");
        }
        YamlDocument doc = YamlDocument.parse(text, file.toString());
        StrictSection top = StrictSection.root(doc, TOP);
        Path base = file.toAbsolutePath().getParent();

        Optional<StrictSection> coordinator = top.section("coordinator", List.of("address"));
        String address = coordinator.map(c -> c.string("address", ClusterSettings.LOOPBACK))
                .orElse(ClusterSettings.LOOPBACK);
        String addressOrigin = coordinator.map(c -> c.originOf("address")).orElse(file.toString());

        Path distribution = top.has("distribution") ? resolve(base, home, top.string("distribution", null)) : null;

        List<ConfigOverride> jobSets = new ArrayList<>();
        Path jobConfig = null;
        Optional<StrictSection> job = top.section("job", List.of("config", "set"));
        if (job.isPresent()) {
            StrictSection j = job.get();
            if (j.has("config")) {
                jobConfig = resolve(base, home, j.string("config", null));
                if (!Files.isRegularFile(jobConfig)) {
                    throw j.error("config", jobConfig + " does not exist; give the job YAML's path, relative to "
                            + base);
                }
            }
            if (j.has("set")) {
                j.mapping("set").forEach((key, value) -> jobSets.add(new ConfigOverride(key, value,
                        doc.originOf(j.pathOf("set") + "." + key))));
            }
        }

        if (!top.has("hosts")) {
            throw top.error("hosts", "is required: name each host with its workers, e.g. hosts: {a: {local: true,"
                    + " workers: 2}}");
        }
        List<ClusterHost> hosts = new ArrayList<>();
        boolean local = false;
        for (StrictSection h : top.sections("hosts", HOST)) {
            ClusterHost host = host(h, base, home, address);
            if (host.local() && local) {
                throw h.error("local", "only one host may be local: this machine runs all its local workers");
            }
            local |= host.local();
            hosts.add(host);
        }
        if (hosts.isEmpty()) {
            throw top.error("hosts", "names no host; add at least one");
        }

        List<ConfigOverride> launchSets = new ArrayList<>();
        Optional<StrictSection> ports = top.section("ports", List.of("hazelcast", "aeron"));
        if (ports.isPresent()) { // the job's launch keys, at the cluster file's lines
            for (String which : List.of("hazelcast", "aeron")) {
                if (ports.get().has(which)) {
                    launchSets.add(new ConfigOverride("launch." + which + "_port",
                            ports.get().integer(which, 0, 0, 65535), ports.get().originOf(which)));
                }
            }
        }
        launchSets.add(new ConfigOverride("launch.launcher", "cluster", file.toString()));
        launchSets.add(new ConfigOverride("launch.bind_address", address, addressOrigin));
        return new ClusterFile(file, address, addressOrigin, distribution,
                top.has("distribution") ? top.originOf("distribution") : file.toString(), List.copyOf(hosts),
                top.strings("jvm_options"), jobConfig, List.copyOf(jobSets), List.copyOf(launchSets));
    }

    private static ClusterHost host(StrictSection h, Path base, Path home, String coordinatorAddress) {
        int workers = h.integer("workers", 1, 1, 1024);
        if (h.bool("local", false)) {
            for (String remoteOnly : List.of("ssh", "distribution", "java")) {
                if (h.has(remoteOnly)) {
                    throw h.error(remoteOnly, "is for remote hosts; a local host runs this machine's distribution"
                            + " (remove it, or remove local: true)");
                }
            }
            String address = h.string("address", coordinatorAddress);
            if (!address.equals(coordinatorAddress)) {
                throw h.error("address", "a local host's workers bind the coordinator's address "
                        + coordinatorAddress + "; remove address, or set coordinator.address");
            }
            return new ClusterHost(h.name(), address, null, workers, null, null);
        }
        if (!h.has("ssh")) {
            throw h.error("ssh", "is required for a remote host (user and key), or set local: true");
        }
        String address = h.string("address", null);
        BindAddress.literalProblem(address).ifPresent(p -> {
            throw h.error("address", p + "; give the host's IP address, which its workers bind");
        });
        StrictSection ssh = h.section("ssh", SSH).orElseThrow();
        Path key = resolve(base, home, ssh.string("key", null));
        if (!Files.isRegularFile(key)) {
            throw ssh.error("key", key + " does not exist; give the private key file that logs in to " + address
                    + " (ssh-keygen -t ed25519 makes one)");
        }
        String distribution = h.string("distribution", null);
        if (!distribution.startsWith("/")) {
            throw h.error("distribution", "'" + distribution + "' must be an absolute path on the host, e.g."
                    + " /opt/tessera");
        }
        return new ClusterHost(h.name(), address, new ClusterHost.Ssh(ssh.string("user", null), key,
                ssh.integer("port", 22, 1, 65535), ssh.strings("options")), workers, distribution,
                h.string("java", "java"));
    }

    /** {@code ~/...} in the user's home, any other relative path in {@code base} (the cluster file's folder). */
    private static Path resolve(Path base, Path home, String path) {
        if (path.equals("~") || path.startsWith("~/")) {
            return Path.of(home + path.substring(1));
        }
        return base.resolve(path).normalize();
    }

    public Path file() {
        return file;
    }

    public List<ClusterHost> hosts() {
        return hosts;
    }

    /** The job YAML the file names, if any. */
    public Optional<Path> jobConfig() {
        return Optional.ofNullable(jobConfig);
    }

    /** The file's {@code job.set} keys, in order. */
    public List<ConfigOverride> jobSets() {
        return jobSets;
    }

    /**
     * The launch keys the file decides, to apply after every other layer: {@code launch.launcher: cluster}, the
     * coordinator's address as {@code launch.bind_address}, and its ports.
     */
    public List<ConfigOverride> launchSets() {
        return launchSets;
    }

    /** The number of workers over all hosts. */
    public int workers() {
        return hosts.stream().mapToInt(ClusterHost::workers).sum();
    }

    /** {@link #launchers(PrintStream)} of the file at {@code file}, the workers' lines on standard error. */
    public static Function<JobConfig, Launcher> launchers(Path file) {
        return load(file).launchers(System.err);
    }

    /**
     * A launcher per attempt of a job on these hosts, for {@code new ClusterTraining(...)}. Before the first, it
     * checks that the job's world size is the hosts' workers and brings every remote host's distribution up to
     * date; each worker's lines go to {@code logs} with a rank prefix.
     */
    public Function<JobConfig, Launcher> launchers(PrintStream logs) {
        return job -> {
            checkOnce(job, logs);
            return new ClusterLauncher(hosts, coordinatorAddress, job.launch().workerMemoryMb(), jvmOptions, logs);
        };
    }

    /** Fails, naming the file, unless {@code job} has one rank per worker of the hosts. */
    public void requireFits(JobConfig job) {
        if (job.mesh().world() != workers()) {
            throw new UserInputException(file + ": hosts run " + workers() + " workers but the job's mesh has "
                    + job.mesh().world() + " ranks (mesh.dp x mesh.sp); set workers per host to add up to "
                    + job.mesh().world() + ", or mesh.dp in job.set");
        }
    }

    /** Restarts of the job launch again on hosts already checked. */
    private synchronized void checkOnce(JobConfig job, PrintStream logs) {
        if (checked) {
            return;
        }
        requireFits(job);
        BindAddress.problem(coordinatorAddress).ifPresent(p -> {
            throw new UserInputException(coordinatorOrigin + ": coordinator.address " + p + "; use one of this"
                    + " machine's addresses the hosts can reach: " + String.join(", ", BindAddress.ofThisHost()));
        });
        if (hosts.stream().anyMatch(h -> !h.local())) {
            Distribution dist = Distribution.at(localDistribution(), distributionOrigin);
            for (ClusterHost host : hosts) {
                if (!host.local()) {
                    dist.ensureOn(host, logs);
                }
            }
        }
        checked = true;
    }

    /** The distribution to copy: the file's, else the one ./tessera built ({@code tessera.home}). */
    private Path localDistribution() {
        if (distribution != null) {
            return distribution;
        }
        String home = System.getProperty("tessera.home");
        if (home == null) {
            throw new UserInputException(file + ": distribution is not set and this is not ./tessera; set"
                    + " distribution to the folder that holds lib/ (deploy/target/tessera after mvn package)");
        }
        return Path.of(home, "deploy", "target", "tessera");
    }
}
