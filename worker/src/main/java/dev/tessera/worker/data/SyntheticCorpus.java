package dev.tessera.worker.data;

import dev.tessera.comm.UserInputException;
import java.util.OptionalDouble;

/**
 * The embedded default corpus: a mixture of sparse order-2 Markov sources with a known, exact loss floor,
 * so a run without data still shows whether the model learns.
 *
 * <p>The 256-token vocabulary is cut into {@code domains} disjoint alphabets of {@code symbolsPerDomain}
 * tokens (tokens beyond {@code domains*symbolsPerDomain} never occur). Each domain is an order-2 chain in
 * which every context {@code (a, b)} has {@code branching} possible successors. A sequence of
 * {@code seq+1} tokens picks a domain uniformly, draws its first two tokens from the domain's stationary
 * pair distribution and then runs the chain. Because the alphabets are disjoint, the first token reveals
 * the domain, so the best possible predictor's expected loss is exact: target 1 costs
 * {@code H(x1|x0)}, every later target costs the domain's entropy rate.
 */
public final class SyntheticCorpus implements TokenSource {

    /** Shape of the corpus; {@code seed} fixes both the chains and the sample stream. */
    public record Spec(int domains, int symbolsPerDomain, int branching, long seed) {

        /** 8 domains x 16 symbols, 4 successors per context: 2048 contexts, a floor near 1.1 nats. */
        public static final Spec DEFAULT = new Spec(8, 16, 4, 20240601L);

        public Spec {
            if (domains < 1) {
                throw new UserInputException("synthetic corpus: domains is " + domains + " but must be at least 1");
            }
            if (symbolsPerDomain < 2) {
                throw new UserInputException("synthetic corpus: symbols_per_domain is " + symbolsPerDomain
                        + " but must be at least 2");
            }
            if ((long) domains * symbolsPerDomain > ByteTokenizer.VOCAB_SIZE) {
                throw new UserInputException("synthetic corpus: domains x symbols_per_domain = "
                        + (long) domains * symbolsPerDomain + " exceeds the vocabulary of " + ByteTokenizer.VOCAB_SIZE
                        + "; lower one of them");
            }
            if (branching < 1 || branching > symbolsPerDomain) {
                throw new UserInputException("synthetic corpus: branching is " + branching
                        + " but must be in 1.." + symbolsPerDomain + " (symbols_per_domain)");
            }
        }
    }

    /** Separates the structure stream from the sample stream although both derive from one seed. */
    private static final long STRUCTURE_SALT = 0x57C0C7E5L;
    private static final long SAMPLE_SALT = 0x5A3B1E5L;

    private final Spec spec;
    private final int seq;
    private final MarkovDomain[] domains;

    /** The corpus for sequences of {@code seq} targets; {@link #entropyFloor()} is for that length. */
    public SyntheticCorpus(Spec spec, int seq) {
        if (seq < 1) {
            throw new UserInputException("seq_len is " + seq + " but must be at least 1");
        }
        this.spec = spec;
        this.seq = seq;
        this.domains = new MarkovDomain[spec.domains()];
        for (int d = 0; d < domains.length; d++) {
            SplitMix64 rng = new SplitMix64(SplitMix64.hash(spec.seed(), STRUCTURE_SALT, d));
            domains[d] = new MarkovDomain(spec.symbolsPerDomain(), spec.branching(), rng);
        }
    }

    public static SyntheticCorpus withDefaults(int seq) {
        return new SyntheticCorpus(Spec.DEFAULT, seq);
    }

    public Spec spec() {
        return spec;
    }

    /** The sequence length {@link #entropyFloor()} refers to. */
    public int seq() {
        return seq;
    }

    @Override
    public int vocabSize() {
        return ByteTokenizer.VOCAB_SIZE;
    }

    /** Works for any {@code seq}; only {@link #entropyFloor()} is tied to the constructor's. */
    @Override
    public void fill(Split split, long step, int firstSample, int count, int seq, int[] inputs, int[] targets) {
        int s = spec.symbolsPerDomain();
        for (int j = 0; j < count; j++) {
            SplitMix64 rng = new SplitMix64(SplitMix64.hash(spec.seed(), SAMPLE_SALT, split.ordinal(), step, firstSample + j));
            int d = rng.nextInt(domains.length);
            MarkovDomain dom = domains[d];
            int pair = dom.samplePair(rng.nextDouble());
            int a = pair / s;
            int b = pair % s;
            int base = j * seq;
            int offset = d * s;
            // Token t of the sequence is inputs[t] for t < seq and targets[t-1] for t >= 1.
            inputs[base] = offset + a;
            if (seq > 1) {
                inputs[base + 1] = offset + b;
            }
            targets[base] = offset + b;
            for (int t = 2; t <= seq; t++) {
                int c = dom.sampleNext(a, b, rng.nextDouble());
                if (t < seq) {
                    inputs[base + t] = offset + c;
                }
                targets[base + t - 1] = offset + c;
                a = b;
                b = c;
            }
        }
    }

    /** Expected loss (nats per target) of the best possible predictor at the configured {@code seq}. */
    @Override
    public OptionalDouble entropyFloor() {
        return OptionalDouble.of(entropyFloor(seq));
    }

    /** The floor for sequences of {@code seq} targets: {@code (H(x1|x0) + (seq-1) * rate) / seq}, averaged over domains. */
    public double entropyFloor(int seq) {
        double sum = 0;
        for (MarkovDomain d : domains) {
            sum += (d.firstStepEntropy + (seq - 1) * d.entropyRate) / seq;
        }
        return sum / domains.length;
    }

    /** The mean conditional entropy rate over domains: the floor's limit for long sequences. */
    public double entropyRate() {
        double sum = 0;
        for (MarkovDomain d : domains) {
            sum += d.entropyRate;
        }
        return sum / domains.length;
    }

    /** Entropy (nats) of the marginal token distribution of the mixture: what a unigram model reaches. */
    public double unigramEntropy() {
        int s = spec.symbolsPerDomain();
        double[] p = new double[domains.length * s];
        for (int d = 0; d < domains.length; d++) {
            for (int x = 0; x < s; x++) {
                p[d * s + x] = domains[d].marginal(x) / domains.length;
            }
        }
        return MarkovDomain.entropy(p);
    }

    /**
     * Mean negative log-likelihood of the targets under the true source: what a perfect model would score
     * on this batch. Its expectation is {@link #entropyFloor(int)}.
     */
    public double optimalLoss(int[] inputs, int[] targets, int count, int seq) {
        int s = spec.symbolsPerDomain();
        double nll = 0;
        for (int j = 0; j < count; j++) {
            int base = j * seq;
            int d = inputs[base] / s;
            MarkovDomain dom = domains[d];
            int offset = d * s;
            nll -= Math.log(dom.firstStepProbability(inputs[base] - offset, targets[base] - offset));
            for (int t = 1; t < seq; t++) {
                nll -= Math.log(dom.nextProbability(inputs[base + t - 1] - offset, inputs[base + t] - offset,
                        targets[base + t] - offset));
            }
        }
        return nll / ((double) count * seq);
    }

    /** Contexts the chains actually visit (out of {@code domains * symbolsPerDomain^2}). */
    public int liveContexts() {
        int n = 0;
        for (MarkovDomain d : domains) {
            n += d.liveContexts();
        }
        return n;
    }

    @Override
    public String describe() {
        int contexts = spec.domains() * spec.symbolsPerDomain() * spec.symbolsPerDomain();
        return String.format("synthetic corpus: %d domains x %d symbols, order-2 Markov, branching %d, %d contexts"
                        + " (%d reachable), seed %d; entropy floor %.4f nats/token at seq %d, unigram entropy %.4f nats",
                spec.domains(), spec.symbolsPerDomain(), spec.branching(), contexts, liveContexts(), spec.seed(),
                entropyFloor(seq), seq, unigramEntropy());
    }
}
