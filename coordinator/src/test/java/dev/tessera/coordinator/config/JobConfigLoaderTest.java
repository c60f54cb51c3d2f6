package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.worker.job.AdafactorSection;
import dev.tessera.worker.job.CameSection;
import dev.tessera.worker.job.DataSourceKind;
import dev.tessera.worker.job.Dtype;
import dev.tessera.worker.job.EvalSection;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.OptimizerKind;
import dev.tessera.worker.job.OptimizerSection;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.run.Assignment;
import dev.tessera.worker.run.WorkerJob;
import dev.tessera.worker.train.TrainConfig;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JobConfigLoaderTest {

    @TempDir
    Path tmp;

    @Test
    void noFileAndNoSetsGivesTheDefaults() {
        assertEquals(JobConfig.defaults(), JobConfigLoader.load(null, List.of()));
    }

    @Test
    void defaultsRoundTripThroughYamlAndMap() throws Exception {
        JobConfig defaults = JobConfig.defaults();
        Path file = tmp.resolve("job.yaml");
        Files.writeString(file, JobConfigLoader.toYaml(defaults));
        JobConfig fromYaml = JobConfigLoader.load(file, List.of());
        assertEquals(defaults, fromYaml);
        JobConfig fromMap = JobConfigLoader.fromMap(fromYaml.toMap(), "trainer_state.json");
        assertEquals(defaults, fromMap);
        assertEquals(defaults.toMap(), fromMap.toMap());
    }

    @Test
    void defaultsPrintAsTheStoredFormat() throws Exception {
        // --print-config and every run's config.yaml, as the build before the spec moved to worker.job wrote them:
        // a resume reads old files back, so keys, their order and the number forms stay.
        String stored = new String(getClass().getResourceAsStream("default-config.yaml").readAllBytes(),
                java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(stored, JobConfigLoader.toYaml(JobConfig.defaults()));
        assertEquals(JobConfig.defaults(), JobConfigLoader.fromYaml(stored, "config.yaml"));
        String beforeActivationCheckpointing = stored.replace("  activation_checkpointing: none\n", "")
                .replace("  recompute_every: 2\n", "");
        assertEquals(JobConfig.defaults(), JobConfigLoader.fromYaml(beforeActivationCheckpointing, "config.yaml"),
                "a run's config.yaml from before a key existed reads back with the key's default");
        String beforeGates = stored.replace("  gate: topk\n  capacity_factor: 1.25\n  eval_capacity_factor: 2.0\n"
                + "  router_z_coef: 0.0\n  hyper_size: 0\n  gshard_second_expert: random\n"
                + "  gshard_renormalize_after_drop: false\n  batch_prioritized: false\n", "");
        assertTrue(beforeGates.length() < stored.length());
        assertEquals(JobConfig.defaults(), JobConfigLoader.fromYaml(beforeGates, "config.yaml"),
                "a config.yaml from before model.gate existed routes as Mixtral did");
        // Written before launch.bind_address existed: read with its default.
        String older = stored.replace("  bind_address: 127.0.0.1\n", "");
        assertTrue(older.length() < stored.length());
        assertEquals(JobConfig.defaults(), JobConfigLoader.fromYaml(older, "config.yaml"));
    }

    @Test
    void resolvedConfigRoundTripsThroughJsonAsTrainerStateStoresIt() throws Exception {
        JobConfig custom = JobConfigLoader.load(null, List.of("train.seed=9000000000", "model.dtype=float64",
                "optimizer.lr=1", "out=runs/x"));
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        @SuppressWarnings("unchecked")
        Map<String, Object> back = json.readValue(json.writeValueAsString(custom.toMap()), Map.class);
        assertEquals(custom, JobConfigLoader.fromMap(back, "trainer_state.json"));
    }

    @Test
    void decay1dIsOffByDefaultAndReachesEveryOptimizerOfTheWorkerJob() {
        for (boolean on : new boolean[] {false, true}) {
            List<String> sets = on ? List.of("optimizer.decay_1d=true") : List.of();
            JobConfig config = JobConfigLoader.load(null, sets);
            assertEquals(on, config.optimizer().decay1d());
            assertEquals(config, JobConfigLoader.fromMap(config.toMap(), "trainer_state.json"));
            ControlCodec codec = new ControlCodec(Assignment.CONTROL_TYPES);
            UnsafeBuffer frame = new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]);
            int length = codec.encode(new Assignment(0, WorkerJob.of(config, tmp, null)), frame, 0);
            dev.tessera.optimizers.OptimizerSpec spec = ((Assignment) codec.decode(frame, 0, length)).readableJob()
                    .optimizer();
            assertEquals(List.of(on, on, on),
                    List.of(spec.adamw().decay1d(), spec.adafactor().decay1d(), spec.came().decay1d()));
        }
    }

    @Test
    void adafactorAndCameKeysRoundTripThroughJsonAndYaml() throws Exception {
        JobConfig custom = JobConfigLoader.load(null, List.of("optimizer.name=adafactor",
                "optimizer.adafactor.beta1=0.9", "optimizer.adafactor.relative_step=false",
                "optimizer.adafactor.scale_parameter=false", "optimizer.adafactor.decay_rate=-0.5",
                "optimizer.adafactor.weight_decay=0.01", "optimizer.came.beta3=0.9995", "optimizer.came.eps2=1e-12"));
        AdafactorSection a = custom.optimizer().adafactor();
        assertEquals(OptimizerKind.ADAFACTOR, custom.optimizer().name());
        assertEquals(new AdafactorSection(1e-30, 1e-3, 1.0, -0.5, false, false, false,
                java.util.OptionalDouble.of(0.9), 0.01), a);
        assertEquals(new CameSection(0.9, 0.999, 0.9995, 1e-30, 1e-12, 1.0, 0.0), custom.optimizer().came());
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        @SuppressWarnings("unchecked")
        Map<String, Object> back = json.readValue(json.writeValueAsString(custom.toMap()), Map.class);
        assertEquals(custom, JobConfigLoader.fromMap(back, "trainer_state.json"));
        assertEquals(custom, JobConfigLoader.fromYaml(JobConfigLoader.toYaml(custom), "config.yaml"));
    }

    @Test
    void adafactorAndCameDefaultsAreTheSpecs() {
        OptimizerSection o = JobConfig.defaults().optimizer();
        // ALGORITHMS.md §1: HF class defaults; beta1 null = no momentum.
        assertEquals(new AdafactorSection(1e-30, 1e-3, 1.0, -0.8, true, true, false,
                java.util.OptionalDouble.empty(), 0.0), o.adafactor());
        // ALGORITHMS.md §2: official CAME code defaults.
        assertEquals(new CameSection(0.9, 0.999, 0.9999, 1e-30, 1e-16, 1.0, 0.0), o.came());
        assertTrue(JobConfig.defaults().toMap().toString().contains("beta1=null"));
    }

    @Test
    void mapSurvivesJsonLikeNumberTypes() {
        // Jackson reads small longs back as Integer and doubles such as 10000.0 as Double: both must load.
        Map<String, Object> map = JobConfig.defaults().toMap();
        @SuppressWarnings("unchecked")
        Map<String, Object> data = (Map<String, Object>) map.get("data");
        data.put("seed", Math.toIntExact(JobConfig.defaults().data().seed())); // Integer where a long is stored
        assertEquals(JobConfig.defaults(), JobConfigLoader.fromMap(map, "trainer_state.json"));
    }

    @Test
    void fileThenSetsOverrideInOrderWithYamlTypes() throws Exception {
        Path file = tmp.resolve("job.yaml");
        Files.writeString(file, "model:\n  d_model: 64\n  dtype: float64\ntrain:\n  steps: 10\n");
        JobConfig c = JobConfigLoader.load(file, List.of("train.steps=20", "optimizer.lr=1e-4", "optimizer.min_lr=0",
                "optimizer.warmup_steps=5", "out=/tmp/x", "data.synthetic.domains=4", "train.steps=30",
                "model.rope_theta=500000"));
        assertEquals(64, c.model().dModel());
        assertEquals(Dtype.FLOAT64, c.model().dtype());
        assertEquals(30, c.train().steps());
        assertEquals(1e-4, c.optimizer().lr());
        assertEquals(5, c.optimizer().warmupSteps());
        assertEquals("/tmp/x", c.out());
        assertEquals(4, c.data().synthetic().domains());
        assertEquals(500000.0, c.model().ropeTheta());
        assertEquals(128, c.train().seqLen(), "untouched keys keep defaults");
    }

    @Test
    void setNullRestoresANullableDefaultAndSectionsMergeFromFlowMaps() {
        JobConfig c = JobConfigLoader.load(null, List.of("out=somewhere", "out=null", "eval={every: 5, batches: 2}"));
        assertNull(c.out());
        assertEquals(new EvalSection(5, 2), c.eval());
    }

    @Test
    void emptySectionKeepsDefaults() {
        assertEquals(JobConfig.defaults(), JobConfigLoader.fromYaml("eval:\n# every: 3\nmodel: {}\n", "x.yaml"));
    }

    @Test
    void conversionsCarryEveryField() {
        JobConfig c = JobConfigLoader.load(null, List.of("train.seq_len=64", "checkpoint.every=50"));
        ModelConfig m = c.toModelConfig();
        assertEquals(new ModelConfig(256, 128, 4, 4, 344, 4, 2, 2, 172, 10000.0, 1e-5, 0.01, 64), m);
        TrainConfig t = c.toTrainConfig();
        assertEquals(new TrainConfig(1500, 16, 64, 42, 4e-3, 4e-4, 100, 1.0, 250, 8, 50), t);
    }

    @Test
    void denseModelDropsExpertFields() {
        JobConfig c = JobConfigLoader.load(null, List.of("model.moe_every=0", "model.n_experts=0"));
        assertEquals(ModelConfig.dense(256, 128, 4, 4, 344, 128), c.toModelConfig());
    }

    @Test
    void textSourceAcceptsAReadableFile() throws Exception {
        Path text = tmp.resolve("corpus.txt");
        Files.writeString(text, "hello");
        JobConfig c = JobConfigLoader.load(null, List.of("data.source=text", "data.path=" + text));
        assertEquals(DataSourceKind.TEXT, c.data().source());
        assertEquals(text.toString(), c.data().path());
    }

    @Test
    void yamlErrorsCarryFileLineAndColumn() throws Exception {
        Path file = tmp.resolve("job.yaml");
        Files.writeString(file, "model:\n  d_model: 64\n  n_head: 4\n");
        UserInputException e = assertThrows(UserInputException.class, () -> JobConfigLoader.load(file, List.of()));
        assertTrue(e.getMessage().startsWith(file + ":3:3: unknown key 'model.n_head' (did you mean "
                + "'model.n_heads'?)"), e.getMessage());

        Files.writeString(file, "optimizer:\n  lr: -0.1\n");
        e = assertThrows(UserInputException.class, () -> JobConfigLoader.load(file, List.of()));
        assertEquals(file + ":2:3: optimizer.lr must be > 0 (got -0.1)", e.getMessage());
    }

    @Test
    void validationErrorsNameTheKey() {
        assertMessage(List.of("model.top_k=5"), "model.top_k (5) must be <= model.n_experts (4)");
        assertMessage(List.of("model.d_model=130"), "model.d_model (130) must be divisible by model.n_heads (4)");
        assertMessage(List.of("model.n_experts=1"), "model.n_experts must be >= 2");
        assertMessage(List.of("model.expert_d_ff=0"), "model.expert_d_ff must be >= 1 (got 0)");
        assertMessage(List.of("model.vocab_size=512"), "model.vocab_size must be 256");
        assertMessage(List.of("model.dtype=bfloat16"), "model.dtype must be one of float32, float64");
        assertMessage(List.of("train.seq_len=0"), "train.seq_len must be >= 1 (got 0)");
        assertMessage(List.of("train.batch_size=0"), "train.batch_size must be >= 1");
        assertMessage(List.of("train.steps=0"), "train.steps must be >= 1");
        assertMessage(List.of("train.steps=10"), "optimizer.warmup_steps (100) must be <= train.steps (10)");
        assertMessage(List.of("optimizer.min_lr=1"), "optimizer.min_lr (1.0) must be <= optimizer.lr");
        assertMessage(List.of("optimizer.adafactor.decay_rate=0.8"), "optimizer.adafactor.decay_rate must be < 0");
        assertMessage(List.of("optimizer.adafactor.beta1=1"), "optimizer.adafactor.beta1 must be in [0, 1) (got 1.0)");
        assertMessage(List.of("optimizer.adafactor.eps1=0"), "optimizer.adafactor.eps1 must be > 0 (got 0.0)");
        assertMessage(List.of("optimizer.adafactor.relative_step=false", "optimizer.adafactor.warmup_init=true"),
                "optimizer.adafactor.warmup_init: true requires optimizer.adafactor.relative_step: true");
        assertMessage(List.of("optimizer.adafactor.relative_step=yes please"),
                "optimizer.adafactor.relative_step must be true or false (got string 'yes please')");
        assertMessage(List.of("optimizer.came.beta3=1.5"), "optimizer.came.beta3 must be in [0, 1) (got 1.5)");
        assertMessage(List.of("optimizer.came.eps2=-1"), "optimizer.came.eps2 must be > 0 (got -1.0)");
        assertMessage(List.of("optimizer.came.clip_threshold=0"), "optimizer.came.clip_threshold must be > 0");
        assertMessage(List.of("optimizer.name=sgd"), "optimizer.name must be one of adamw, adafactor, came");
        assertMessage(List.of("data.val_fraction=1"), "data.val_fraction must be strictly between 0 and 1");
        assertMessage(List.of("data.source=text"), "data.source is text but data.path is not set");
        assertMessage(List.of("data.source=text", "data.path=/no/such/file"), "data.path '/no/such/file'");
        assertMessage(List.of("eval.every=-1"), "eval.every must be >= 0 (got -1)");
        assertMessage(List.of("train.steps=abc"), "train.steps must be an integer (got string 'abc')");
        assertMessage(List.of("train.steps=1.5"), "train.steps must be an integer (got number 1.5)");
        assertMessage(List.of("train=3"), "'train' is a section");
        assertMessage(List.of("train.steps.x=3"), "unknown key 'train.steps.x'");
        assertMessage(List.of("trian.steps=3"), "unknown key 'trian.steps' (did you mean 'train.steps'?)");
        assertMessage(List.of("steps"), "--set steps: expected key=value");
    }

    @Test
    void bindAddressMustBeALiteralAddressOfThisHost() { // a UserInputException: the CLI's exit code 2
        assertEquals("127.0.0.1", JobConfigLoader.load(null, List.of()).launch().bindAddress());
        assertEquals("127.0.0.2", JobConfigLoader.load(null, List.of("launch.bind_address=127.0.0.2")).launch()
                .bindAddress(), "all of 127.0.0.0/8 is loopback");
        for (String own : BindAddress.ofThisHost()) {
            assertEquals(own, JobConfigLoader.load(null, List.of("launch.bind_address=" + own)).launch().bindAddress());
        }
        String fix = "; use ";
        assertMessage(List.of("launch.bind_address=localhost"),
                "launch.bind_address 'localhost' is not a literal IPv4 or IPv6 address (host names are not resolved)");
        assertMessage(List.of("launch.bind_address=203.0.113.7"), // TEST-NET-3: no host of ours holds it
                "launch.bind_address '203.0.113.7' is not an address of any interface of this host" + fix);
        assertMessage(List.of("launch.bind_address=203.0.113.7"),
                "127.0.0.1 when every process of the job runs on this host");
        assertMessage(List.of("launch.bind_address=0.0.0.0"), "launch.bind_address '0.0.0.0' is the wildcard address");
        assertMessage(List.of("launch.bind_address=300.1.2.3"), "'300.1.2.3' is not a valid IPv4 address" + fix);
        assertMessage(List.of("launch.bind_address=1::2::3"), "'1::2::3' is not a valid IP address" + fix);
        assertMessage(List.of("launch.bind_address=null"), "launch.bind_address is not set" + fix);
    }

    private static void assertMessage(List<String> sets, String expectedPart) {
        UserInputException e = assertThrows(UserInputException.class, () -> JobConfigLoader.load(null, sets));
        assertTrue(e.getMessage().contains(expectedPart), () -> "'" + e.getMessage() + "' lacks '" + expectedPart + "'");
        assertTrue(e.getMessage().startsWith("--set "), e.getMessage());
        assertTrue(e.getMessage().lines().count() == 1, e.getMessage());
    }
}
