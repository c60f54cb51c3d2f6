package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The profile report's arithmetic: kernels are listed beneath the section they ran in and never counted in the
 * total a second time, the rest of a section is its {@code other}, and a kernel outside every section is a section
 * of its own.
 */
class StepProfileTest {

    /** One line of the report: its name as printed (indent kept), ms/step and %. */
    private record Row(String name, double ms, double pct) {
    }

    private static List<Row> rows(String report) {
        List<Row> rows = new ArrayList<>();
        for (String line : report.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 2 && !f[f.length - 1].equals("%")) {
                String indent = line.startsWith("  ") ? "  " : "";
                double pct = f.length == 3 ? Double.parseDouble(f[2]) : Double.NaN;
                rows.add(new Row(indent + f[0], Double.parseDouble(f[1]), pct));
            }
        }
        return rows;
    }

    private static final long MS = 1_000_000L;

    @Test
    void kernelsNestUnderTheirSectionAndTheTotalCountsSectionsOnly() {
        StepProfile p = new StepProfile();
        int fwd = p.section("block.fwd");
        int adamw = p.section("adamw");
        int gemm = p.kernel("ffn.gemm");
        int norm = p.kernel("rmsnorm");
        int ce = p.kernel("cross_entropy");
        p.addSection(fwd, 20 * MS);
        p.addKernel(fwd, gemm, 12 * MS);
        p.addKernel(fwd, norm, 2 * MS);
        p.addSection(adamw, 10 * MS);
        p.addKernel(-1, ce, 2 * MS); // ran outside every section
        p.addKernel(-1, gemm, 8 * MS);

        List<Row> rows = rows(p.report(2)); // totals over 2 steps: 40 ms, 20 ms/step
        List<Row> expected = List.of(
                new Row("block.fwd", 10.0, 50.0),
                new Row("  ffn.gemm", 6.0, 30.0),
                new Row("  rmsnorm", 1.0, 5.0),
                new Row("  other", 3.0, 15.0),
                new Row("adamw", 5.0, 25.0),
                new Row("ffn.gemm", 4.0, 20.0),
                new Row("cross_entropy", 1.0, 5.0),
                new Row("total", 20.0, Double.NaN),
                new Row("ffn.gemm", 10.0, 50.0),     // over all sections: 6 in block.fwd + 4 alone
                new Row("rmsnorm", 1.0, 5.0),
                new Row("cross_entropy", 1.0, 5.0));
        assertEquals(expected, rows);
    }

    @Test
    void clearKeepsNamesAndForgetsTimes() {
        StepProfile p = new StepProfile();
        int s = p.section("head.fwd");
        int k = p.kernel("lm_head");
        p.addSection(s, 5 * MS);
        p.addKernel(s, k, 4 * MS);
        p.clear();
        p.addSection(s, 3 * MS);
        List<Row> rows = rows(p.report(1));
        assertEquals(List.of(new Row("head.fwd", 3.0, 100.0), new Row("total", 3.0, Double.NaN)), rows);
        assertEquals(k, p.kernel("lm_head"));
        assertEquals(s, p.section("head.fwd"));
    }

    /** The timer's own routing, on the real clock: a kernel inside an open section is nested, once. */
    @Test
    void timerRecordsKernelsInTheOpenSectionOnly() throws InterruptedException {
        boolean was = ModelStepTimer.enabled();
        int section = ModelStepTimer.section("test.section");
        int outer = ModelStepTimer.kernel("test.outer");
        int inner = ModelStepTimer.kernel("test.inner");
        try {
            ModelStepTimer.enable(false);
            ModelStepTimer.reset();
            assertEquals(0L, ModelStepTimer.open(section));
            assertEquals(0L, ModelStepTimer.startKernel());
            assertEquals(0L, ModelStepTimer.start());

            ModelStepTimer.enable(true);
            long clock = ModelStepTimer.open(section);
            long k = ModelStepTimer.startKernel();
            long nested = ModelStepTimer.startKernel();
            assertEquals(0L, nested, "a kernel within a timed kernel is part of its time");
            Thread.sleep(5);
            ModelStepTimer.stopKernel(inner, nested);
            ModelStepTimer.stopKernel(outer, k);
            ModelStepTimer.close(section, clock);

            List<Row> rows = rows(ModelStepTimer.report(1));
            assertEquals("test.section", rows.get(0).name());
            assertEquals("  test.outer", rows.get(1).name());
            assertEquals("  other", rows.get(2).name());
            assertEquals("total", rows.get(3).name());
            assertEquals(rows.get(0).ms(), rows.get(3).ms(), 0.0, "the kernel is not added to the total");
            assertTrue(rows.get(1).ms() >= 5.0);
            assertFalse(rows.stream().anyMatch(r -> r.name().contains("test.inner")));
        } finally {
            ModelStepTimer.enable(was);
            ModelStepTimer.reset();
        }
    }
}
