package dev.tessera.worker.model;

import static dev.tessera.worker.model.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static dev.tessera.worker.model.GradCheck.dotLoss;
import static dev.tessera.worker.model.GradCheck.numeric;
import static dev.tessera.worker.model.GradCheck.randn;
import static dev.tessera.worker.model.GradCheck.values;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Float64 finite-difference checks of every layer, on dInput and every parameter tensor. */
class LayerGradientTest {
    private final SplittableRandom rng = new SplittableRandom(42);

    private static ModelConfig moeConfig(int dModel, int heads) {
        return new ModelConfig(11, dModel, 2, heads, 12, 4, 2, 1, 5, 10000.0, 1e-5, 0.3, 64);
    }

    /** A store holding the given tensors, filled with N(0, std). */
    private ParameterStore store(java.util.function.Consumer<ParameterStore.Builder> reg, double std) {
        ParameterStore.Builder b = ParameterStore.builder();
        reg.accept(b);
        ParameterStore ps = b.build(DataType.DOUBLE);
        GradCheck.fill(ps.params(), rng, 0, std);
        return ps;
    }

    @Test
    void embedding() {
        ParameterStore ps = store(b -> b.add("e", 7, 5), 1.0);
        Embedding emb = new Embedding(ps, "e");
        int[] tokens = {3, 0, 6, 3, 3, 1};
        INDArray out = Nd4j.create(DataType.DOUBLE, 6, 5);
        INDArray r = randn(rng, 1, 6, 5);
        emb.forward(tokens, out);
        assertEquals(ps.param("e").getDouble(6, 2), out.getDouble(2, 2));
        emb.backward(tokens, r);
        double[] a = values(ps.grad("e"));
        check("embedding.weight", a, numeric(ps.param("e"), () -> {
            emb.forward(tokens, out);
            return dotLoss(out, r);
        }));
    }

    @Test
    void rmsNorm() {
        ParameterStore ps = store(b -> b.add("g", 6), 1.0);
        RMSNorm norm = new RMSNorm(ps, "g", 1e-5, 4);
        INDArray x = randn(rng, 1, 4, 6);
        INDArray y = Nd4j.create(DataType.DOUBLE, 4, 6);
        INDArray dx = Nd4j.create(DataType.DOUBLE, 4, 6);
        INDArray r = randn(rng, 1, 4, 6);
        norm.forward(x, y);
        norm.backward(x, r, dx, false);
        double[] dg = values(ps.grad("g"));
        double[] dxa = values(dx);
        java.util.function.DoubleSupplier loss = () -> {
            norm.forward(x, y);
            return dotLoss(y, r);
        };
        check("rmsnorm.weight", dg, numeric(ps.param("g"), loss));
        check("rmsnorm.input", dxa, numeric(x, loss));
    }

    @Test
    void linear() {
        ParameterStore ps = store(b -> b.add("w", 3, 5), 1.0);
        Linear lin = new Linear(ps, "w");
        INDArray x = randn(rng, 1, 4, 5);
        INDArray y = Nd4j.create(DataType.DOUBLE, 4, 3);
        INDArray dx = Nd4j.create(DataType.DOUBLE, 4, 5);
        INDArray r = randn(rng, 1, 4, 3);
        lin.forward(x, y, false);
        lin.backward(x, r, dx, false);
        double[] dw = values(ps.grad("w"));
        double[] dxa = values(dx);
        java.util.function.DoubleSupplier loss = () -> {
            lin.forward(x, y, false);
            return dotLoss(y, r);
        };
        check("linear.weight", dw, numeric(ps.param("w"), loss));
        check("linear.input", dxa, numeric(x, loss));
    }

    @Test
    void rope() {
        int b = 2;
        int t = 5;
        int h = 2;
        int d = 6;
        Rope rope = new Rope(d, 10000.0, t, 3);
        INDArray x = randn(rng, 1, b * t, h * d);
        INDArray out = Nd4j.create(DataType.DOUBLE, b * h, t, d);
        INDArray dx = Nd4j.create(DataType.DOUBLE, b * t, h * d);
        INDArray r = randn(rng, 1, b * h, t, d);
        rope.forward(x, out, b, h);
        // Rotate-half at absolute position 3 + 2 = 5, batch 1, head 1, pair i = 1.
        double ang = 5 * Math.pow(10000.0, -2.0 / d);
        double x1 = x.getDouble(t + 2, d + 1);
        double x2 = x.getDouble(t + 2, d + 1 + d / 2);
        assertEquals(x1 * Math.cos(ang) - x2 * Math.sin(ang), out.getDouble(3, 2, 1), 1e-12);
        assertEquals(x2 * Math.cos(ang) + x1 * Math.sin(ang), out.getDouble(3, 2, 1 + d / 2), 1e-12);
        rope.backward(r, dx, b, h);
        check("rope.input", values(dx), numeric(x, () -> {
            rope.forward(x, out, b, h);
            return dotLoss(out, r);
        }));
    }

    @Test
    void attentionCoreMatchesNaiveCausalAttention() {
        int bh = 3;
        int t = 6;
        int d = 4;
        AttentionCore core = new AttentionCore(DataType.DOUBLE, bh, 1, t, t, d, 0, 0, null);
        INDArray q = randn(rng, 1, bh, t, d);
        INDArray k = randn(rng, 1, bh, t, d);
        INDArray v = randn(rng, 1, bh, t, d);
        INDArray y = Nd4j.create(DataType.DOUBLE, bh, t, d);
        core.forward(q, k, v, y);
        for (int z = 0; z < bh; z++) {
            for (int i = 0; i < t; i++) {
                double[] w = new double[i + 1];
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    double s = 0;
                    for (int c = 0; c < d; c++) {
                        s += q.getDouble(z, i, c) * k.getDouble(z, j, c);
                    }
                    w[j] = Math.exp(s / Math.sqrt(d));
                    sum += w[j];
                }
                for (int c = 0; c < d; c++) {
                    double o = 0;
                    for (int j = 0; j <= i; j++) {
                        o += w[j] / sum * v.getDouble(z, j, c);
                    }
                    assertEquals(o, y.getDouble(z, i, c), 1e-12);
                }
            }
        }
    }

    @Test
    void attentionCoreWithOffsets() {
        // Queries at positions 4.., keys at 2..: the sequence-parallel case of a remote K/V block.
        int bh = 2;
        AttentionCore core = new AttentionCore(DataType.DOUBLE, bh, 1, 3, 5, 4, 4, 2, null);
        INDArray q = randn(rng, 1, bh, 3, 4);
        INDArray k = randn(rng, 1, bh, 5, 4);
        INDArray v = randn(rng, 1, bh, 5, 4);
        INDArray y = Nd4j.create(DataType.DOUBLE, bh, 3, 4);
        INDArray r = randn(rng, 1, bh, 3, 4);
        INDArray dq = Nd4j.create(DataType.DOUBLE, bh, 3, 4);
        INDArray dk = Nd4j.create(DataType.DOUBLE, bh, 5, 4);
        INDArray dv = Nd4j.create(DataType.DOUBLE, bh, 5, 4);
        core.forward(q, k, v, y);
        core.backward(q, k, v, r, dq, dk, dv);
        double[] dqa = values(dq);
        double[] dka = values(dk);
        double[] dva = values(dv);
        java.util.function.DoubleSupplier loss = () -> {
            core.forward(q, k, v, y);
            return dotLoss(y, r);
        };
        check("core.q", dqa, numeric(q, loss));
        check("core.k", dka, numeric(k, loss));
        check("core.v", dva, numeric(v, loss));
    }

    @Test
    void causalSelfAttention() {
        int b = 2;
        int t = 5;
        ModelConfig cfg = moeConfig(8, 2);
        ParameterStore ps = store(bd -> CausalSelfAttention.register(bd, "a", 8), 0.5);
        CausalSelfAttention attn = new CausalSelfAttention(ps, "a", cfg, b, t, null);
        INDArray x = randn(rng, 1, b * t, 8);
        INDArray out = Nd4j.create(DataType.DOUBLE, b * t, 8);
        INDArray dx = Nd4j.create(DataType.DOUBLE, b * t, 8);
        INDArray r = randn(rng, 1, b * t, 8);
        attn.forward(x, out);
        attn.backward(x, r, dx);
        java.util.function.DoubleSupplier loss = () -> {
            out.assign(0);
            attn.forward(x, out);
            return dotLoss(out, r);
        };
        checkAllParams(ps, loss);
        check("attn.input", values(dx), numeric(x, loss));
    }

    @Test
    void swiglu() {
        ParameterStore ps = store(b -> b.add("w1", 7, 6).add("w3", 7, 6).add("w2", 6, 7), 0.5);
        SwiGLU ffn = SwiGLU.stacked(ps, "w1", "w3", "w2");
        SwiGLU.Acts acts = SwiGLU.Acts.allocate(DataType.DOUBLE, 5, 7);
        INDArray x = randn(rng, 1, 5, 6);
        INDArray out = Nd4j.create(DataType.DOUBLE, 5, 6);
        INDArray dx = Nd4j.create(DataType.DOUBLE, 5, 6);
        INDArray r = randn(rng, 1, 5, 6);
        ffn.forward(x, acts, out, false);
        ffn.backward(x, acts, r, dx, false);
        java.util.function.DoubleSupplier loss = () -> {
            ffn.forward(x, acts, out, false);
            return dotLoss(out, r);
        };
        checkAllParams(ps, loss);
        check("swiglu.input", values(dx), numeric(x, loss));
    }

    @Test
    void moe() {
        int n = 10;
        ModelConfig cfg = moeConfig(6, 2);
        double auxCoef = 0.3;
        ParameterStore ps = store(b -> MoE.register(b, "m", cfg), 0.7);
        MoE moe = new MoE(ps, "m", cfg, n);
        INDArray x = randn(rng, 1, n, 6);
        INDArray out = Nd4j.create(DataType.DOUBLE, n, 6);
        INDArray dx = Nd4j.create(DataType.DOUBLE, n, 6);
        INDArray r = randn(rng, 1, n, 6);
        double aux = moe.forward(x, out);
        assertEquals(naiveAux(ps, cfg, x), aux, 1e-12);
        assertNaiveMoe(ps, cfg, x, out);
        moe.backward(x, r, dx, auxCoef);
        java.util.function.DoubleSupplier loss = () -> {
            out.assign(0);
            double a = moe.forward(x, out);
            return dotLoss(out, r) + auxCoef * a;
        };
        checkAllParams(ps, loss);
        check("moe.input", values(dx), numeric(x, loss));
    }

    /** Every gate, with capacity dropping where the gate has it, the aux loss and the router z-loss. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"topk", "switch", "gshard", "gshard-options", "hyper"})
    void moeGates(String gateName) {
        int n = 24; // enough that top-1 sends some to every expert (else an expert's gradient is 0: nothing checked)
        double auxCoef = 0.3;
        double zCoef = 0.05;
        // gshard-options: Gumbel-sampled second experts, weights renormalised after dropping, batch prioritized
        Routing routing = gateName.equals("gshard-options")
                ? new Routing("gshard", 0.6, 2.0, zCoef, 0, "sampling", true, true)
                : new Routing(gateName, 0.6, 2.0, zCoef, 16);
        ModelConfig cfg = moeConfig(6, 2).withRouting(routing);
        ParameterStore ps = store(b -> MoE.register(b, "m", cfg), 0.7);
        MoE moe = new MoE(ps, "m", cfg, n);
        moe.useRoutingSeed(3);
        moe.beginStep(5);
        INDArray x = randn(rng, 1, n, 6);
        INDArray out = Nd4j.create(DataType.DOUBLE, n, 6);
        INDArray dx = Nd4j.create(DataType.DOUBLE, n, 6);
        INDArray r = randn(rng, 1, n, 6);
        moe.forward(x, out);
        if (!gateName.equals("topk") && !gateName.equals("hyper")) {
            assertTrue(moe.lastDroppedFraction() > 0, gateName + " dropped nothing: the check would not cover drops");
        }
        assertTrue(moe.lastZLoss() > 0);
        moe.backward(x, r, dx, auxCoef);
        java.util.function.DoubleSupplier loss = () -> {
            out.assign(0);
            double a = moe.forward(x, out);
            return dotLoss(out, r) + auxCoef * a + zCoef * moe.lastZLoss();
        };
        checkAllParams(ps, loss);
        check("moe.input", values(dx), numeric(x, loss));
    }

    @Test
    void crossEntropy() {
        CrossEntropy ce = new CrossEntropy(DataType.DOUBLE, 4, 7);
        INDArray logits = randn(rng, 2, 4, 7);
        int[] targets = {6, 0, 3, 3};
        double loss = ce.forward(logits, targets);
        double expect = 0;
        for (int n = 0; n < 4; n++) {
            double s = 0;
            for (int v = 0; v < 7; v++) {
                s += Math.exp(logits.getDouble(n, v));
            }
            expect += Math.log(s) - logits.getDouble(n, targets[n]);
        }
        assertEquals(expect / 4, loss, 1e-12);
        double[] a = values(ce.backward(1.0));
        check("crossentropy.logits", a, numeric(logits, () -> ce.forward(logits, targets)));
    }

    private static void checkAllParams(ParameterStore ps, java.util.function.DoubleSupplier loss) {
        for (ParameterStore.Tensor t : ps.tensors()) {
            double[] a = values(ps.grad(t.name()));
            check(t.name(), a, numeric(ps.param(t.name()), loss));
        }
    }

    private static double[] probs(ParameterStore ps, ModelConfig cfg, INDArray x, int n) {
        INDArray g = ps.param("m.gate.weight");
        double[] p = new double[cfg.nExperts()];
        double s = 0;
        for (int e = 0; e < p.length; e++) {
            double z = 0;
            for (int c = 0; c < cfg.dModel(); c++) {
                z += g.getDouble(e, c) * x.getDouble(n, c);
            }
            p[e] = Math.exp(z);
            s += p[e];
        }
        for (int e = 0; e < p.length; e++) {
            p[e] /= s;
        }
        return p;
    }

    private static int[] topK(double[] p, int k) {
        Integer[] idx = new Integer[p.length];
        for (int i = 0; i < p.length; i++) {
            idx[i] = i;
        }
        java.util.Arrays.sort(idx, (a, b) -> p[a] != p[b] ? Double.compare(p[b], p[a]) : Integer.compare(a, b));
        int[] top = new int[k];
        for (int i = 0; i < k; i++) {
            top[i] = idx[i];
        }
        return top;
    }

    private static double naiveAux(ParameterStore ps, ModelConfig cfg, INDArray x) {
        int n = (int) x.size(0);
        int e = cfg.nExperts();
        double[] f = new double[e];
        double[] pm = new double[e];
        for (int t = 0; t < n; t++) {
            double[] p = probs(ps, cfg, x, t);
            for (int j : topK(p, cfg.topK())) {
                f[j] += 1.0 / (n * cfg.topK());
            }
            for (int i = 0; i < e; i++) {
                pm[i] += p[i] / n;
            }
        }
        double aux = 0;
        for (int i = 0; i < e; i++) {
            aux += f[i] * pm[i];
        }
        return e * aux;
    }

    /** out[t] = sum over the top-k of p_e / sum(top-k p) * w2(silu(w1 x) * w3 x), by plain loops. */
    private static void assertNaiveMoe(ParameterStore ps, ModelConfig cfg, INDArray x, INDArray out) {
        int c = cfg.dModel();
        int f = cfg.expertDFF();
        for (int t = 0; t < x.size(0); t++) {
            double[] p = probs(ps, cfg, x, t);
            int[] top = topK(p, cfg.topK());
            double kept = 0;
            for (int e : top) {
                kept += p[e];
            }
            double[] y = new double[c];
            for (int e : top) {
                INDArray w1 = ps.param("m.experts." + e + ".w1.weight");
                INDArray w3 = ps.param("m.experts." + e + ".w3.weight");
                INDArray w2 = ps.param("m.experts." + e + ".w2.weight");
                double[] a = new double[f];
                for (int i = 0; i < f; i++) {
                    double h1 = 0;
                    double h3 = 0;
                    for (int k = 0; k < c; k++) {
                        h1 += w1.getDouble(i, k) * x.getDouble(t, k);
                        h3 += w3.getDouble(i, k) * x.getDouble(t, k);
                    }
                    a[i] = h1 / (1 + Math.exp(-h1)) * h3;
                }
                for (int o = 0; o < c; o++) {
                    double s = 0;
                    for (int i = 0; i < f; i++) {
                        s += w2.getDouble(o, i) * a[i];
                    }
                    y[o] += p[e] / kept * s;
                }
            }
            for (int o = 0; o < c; o++) {
                assertEquals(y[o], out.getDouble(t, o), 1e-12, "token " + t + " dim " + o);
            }
        }
    }
}
