package dev.tessera.worker.blas;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;

import dev.tessera.comm.UserInputException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.TreeSet;
import jdk.incubator.foreign.CLinker;
import jdk.incubator.foreign.FunctionDescriptor;
import jdk.incubator.foreign.MemoryAddress;
import jdk.incubator.foreign.MemorySegment;
import jdk.incubator.foreign.ResourceScope;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.openblas.global.openblas_nolapack;

/**
 * The OpenBLAS kernel this process computes with, and who chose it. The OpenBLAS that ND4J loads (0.3.19) picks
 * its kernel once, when the library loads, and does not know CPUs newer than itself: it takes an AVX-512 AMD EPYC
 * for "Barcelona", a 2008 SSE kernel, at a fifth of the speed of its own SkylakeX kernel on that CPU. So
 * {@link #choose()}, first thing in every main, names the best kernel for this CPU's flags in OPENBLAS_CORETYPE
 * before anything loads the library (a kernel the user set there is kept), and {@link #inUse()} reads back the
 * kernel that loaded and checks once that it computes right.
 *
 * @param kernel   the kernel OpenBLAS runs, as OpenBLAS's {@code openblas_get_corename()} names it
 * @param chosenBy {@link #BY_USER}, {@link #BY_CPU_FLAGS} or {@link #BY_OPENBLAS}
 */
public record BlasKernel(String kernel, String chosenBy) {

    public static final String CORETYPE = "OPENBLAS_CORETYPE";
    /** The user's OPENBLAS_CORETYPE. */
    public static final String BY_USER = CORETYPE;
    /** {@link #bestFor} this CPU's flags. */
    public static final String BY_CPU_FLAGS = "cpu flags";
    /** OpenBLAS's own detection: no better kernel is known for this CPU, or {@link #choose()} did not run. */
    public static final String BY_OPENBLAS = "openblas";

    /** The x86-64 kernels of OpenBLAS 0.3.19, slowest first, with the CPU flags each needs. */
    public static final List<Map.Entry<String, Set<String>>> KERNELS = List.of(
            Map.entry("Prescott", Set.of("pni")), // SSE3, as Linux names it
            Map.entry("Sandybridge", Set.of("avx")),
            Map.entry("Haswell", Set.of("avx2", "fma")),
            Map.entry("SkylakeX", Set.of("avx512f", "avx512bw", "avx512vl", "avx512dq")));

    /** Relative errors a correct single and double gemm stay far below on the check's shapes. */
    private static final double FLOAT_BOUND = 1e-5;
    private static final double DOUBLE_BOUND = 1e-12;

    private static String chooser;
    private static BlasKernel checked;
    private static UserInputException failed;

    /**
     * Sets OPENBLAS_CORETYPE for this process to the best kernel for its CPU, unless the user set one. Must run
     * before anything loads OpenBLAS (ND4J, {@code Gemm}, {@link #inUse()}): the library reads it only at load.
     * Like {@link #inUse()}, it needs the foreign linker, which the JVM flags of pom.xml enable.
     */
    public static synchronized void choose() {
        if (chooser != null) {
            return;
        }
        String user = System.getenv(CORETYPE);
        if (user != null && !user.isBlank()) {
            chooser = BY_USER;
            return;
        }
        String best = bestFor(cpuFlags());
        if (best == null) {
            chooser = BY_OPENBLAS;
            return;
        }
        setenv(CORETYPE, best);
        chooser = BY_CPU_FLAGS;
    }

    /**
     * The kernel OpenBLAS runs in this process, loading the library if nothing has yet. The first call checks
     * that a small sgemm and dgemm of every transpose pair match a plain Java product; a kernel that does not
     * is refused with a {@link UserInputException} (the CLI's exit 2) that says how to pick another.
     */
    public static synchronized BlasKernel inUse() {
        if (checked == null && failed == null) {
            String name = kernelOfEveryCopy();
            String wrong = firstWrongResult(BlasKernel::cblasSgemm, BlasKernel::cblasDgemm);
            if (wrong != null) {
                failed = new UserInputException(refusal(name, wrong));
            } else {
                checked = new BlasKernel(name, chooser == null ? chooserWithoutChoose() : chooser);
                String user = System.getenv(CORETYPE);
                if (BY_USER.equals(checked.chosenBy()) && !name.equalsIgnoreCase(user.strip())) {
                    System.err.println("tessera: " + CORETYPE + "=" + user + " names no kernel this OpenBLAS has"
                            + " for this CPU; it runs " + name);
                }
            }
        }
        if (failed != null) {
            throw failed;
        }
        return checked;
    }

    /** For summary.json: {"kernel": ..., "chosen_by": ...}. */
    public Map<String, Object> toMap() {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("kernel", kernel);
        map.put("chosen_by", chosenBy);
        return map;
    }

    /** The fastest kernel whose flags the CPU has, or null when it has none beyond what OpenBLAS finds itself. */
    static String bestFor(Set<String> cpuFlags) {
        String best = null;
        for (Map.Entry<String, Set<String>> k : KERNELS.subList(1, KERNELS.size())) {
            if (cpuFlags.containsAll(k.getValue())) {
                best = k.getKey();
            }
        }
        return best;
    }

    /** The kernels of {@link #KERNELS} this CPU can run, slowest first. */
    public static List<String> runnableOn(Set<String> cpuFlags) {
        return KERNELS.stream().filter(k -> cpuFlags.containsAll(k.getValue())).map(Map.Entry::getKey).toList();
    }

    /** This CPU's feature flags from /proc/cpuinfo (the first processor's; all cores of a machine share them). */
    public static Set<String> cpuFlags() {
        try {
            return flagsOf(Files.readString(Path.of("/proc/cpuinfo")));
        } catch (IOException e) {
            return Set.of(); // not Linux: leave the choice to OpenBLAS
        }
    }

    static Set<String> flagsOf(String cpuinfo) {
        for (String line : cpuinfo.split("\n")) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).strip().equals("flags")) {
                return new TreeSet<>(Arrays.asList(line.substring(colon + 1).strip().split("\\s+")));
            }
        }
        return Set.of();
    }

    static String refusal(String kernel, String wrong) {
        return "the OpenBLAS kernel " + kernel + " computes wrong results on this CPU (" + wrong + "); set "
                + CORETYPE + " to another kernel (one of " + String.join(", ", KERNELS.stream()
                .map(Map.Entry::getKey).filter(k -> !k.equalsIgnoreCase(kernel)).toList()) + ") and run again";
    }

    private static String chooserWithoutChoose() {
        String user = System.getenv(CORETYPE);
        return user != null && !user.isBlank() ? BY_USER : BY_OPENBLAS;
    }

    /** Row-major C = op(A) op(B) + beta C, as cblas_sgemm. */
    interface Sgemm {
        void gemm(boolean transA, boolean transB, int m, int n, int k, float[] a, int lda, float[] b, int ldb,
                  float beta, float[] c, int ldc);
    }

    /** Row-major C = op(A) op(B) + beta C, as cblas_dgemm. */
    interface Dgemm {
        void gemm(boolean transA, boolean transB, int m, int n, int k, double[] a, int lda, double[] b, int ldb,
                  double beta, double[] c, int ldc);
    }

    /**
     * What the first wrong product was, or null when every transpose pair of both precisions matches a plain
     * product within bounds. Two shapes: a small one, which 0.3.19's AVX-512 kernels run on their small-matrix
     * path, and one big enough for the blocked path.
     */
    static String firstWrongResult(Sgemm sgemm, Dgemm dgemm) {
        SplittableRandom rng = new SplittableRandom(2024);
        int[][] shapes = {{33, 17, 29}, {130, 70, 257}};
        for (int[] shape : shapes) {
            int m = shape[0];
            int n = shape[1];
            int k = shape[2];
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    double[] a = random(rng, m * k);
                    double[] b = random(rng, k * n);
                    double[] c = random(rng, m * n);
                    double[] want = product(ta, tb, m, n, k, a, b, c, 0.5);
                    int lda = ta ? m : k;
                    int ldb = tb ? k : n;
                    float[] cs = toFloats(c);
                    sgemm.gemm(ta, tb, m, n, k, toFloats(a), lda, toFloats(b), ldb, 0.5f, cs, n);
                    double es = relativeError(cs, want);
                    if (!(es <= FLOAT_BOUND)) {
                        return describe("sgemm", ta, tb, m, n, k, es, FLOAT_BOUND);
                    }
                    double[] cd = c.clone();
                    dgemm.gemm(ta, tb, m, n, k, a, lda, b, ldb, 0.5, cd, n);
                    double ed = relativeError(cd, want);
                    if (!(ed <= DOUBLE_BOUND)) {
                        return describe("dgemm", ta, tb, m, n, k, ed, DOUBLE_BOUND);
                    }
                }
            }
        }
        return null;
    }

    private static String describe(String op, boolean ta, boolean tb, int m, int n, int k, double error,
                                   double bound) {
        return String.format(Locale.ROOT, "%s %s x %s, %dx%dx%d: relative error %.1e > %.0e", op,
                ta ? "Trans" : "NoTrans", tb ? "Trans" : "NoTrans", m, n, k, error, bound);
    }

    /** The product in double, summed in order: the reference. */
    private static double[] product(boolean ta, boolean tb, int m, int n, int k, double[] a, double[] b, double[] c,
                                    double beta) {
        double[] out = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = beta * c[i * n + j];
                for (int p = 0; p < k; p++) {
                    sum += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                }
                out[i * n + j] = sum;
            }
        }
        return out;
    }

    /** max |got - want| / max |want|: a gemm's error is relative to the size of its sums, not of each entry. */
    private static double relativeError(float[] got, double[] want) {
        double[] wide = new double[got.length];
        for (int i = 0; i < got.length; i++) {
            wide[i] = got[i];
        }
        return relativeError(wide, want);
    }

    private static double relativeError(double[] got, double[] want) {
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < want.length; i++) {
            diff = Math.max(diff, Math.abs(got[i] - want[i]));
            scale = Math.max(scale, Math.abs(want[i]));
        }
        return diff / scale; // NaN (a failure) when the product is NaN
    }

    private static double[] random(SplittableRandom rng, int size) {
        double[] x = new double[size];
        for (int i = 0; i < size; i++) {
            x[i] = (float) rng.nextDouble(-1, 1); // exact in float, so both precisions see the same inputs
        }
        return x;
    }

    private static float[] toFloats(double[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) x[i];
        }
        return out;
    }

    private static void cblasSgemm(boolean ta, boolean tb, int m, int n, int k, float[] a, int lda, float[] b,
                                   int ldb, float beta, float[] c, int ldc) {
        openblas_nolapack.cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                m, n, k, 1f, a, lda, b, ldb, beta, c, ldc);
    }

    private static void cblasDgemm(boolean ta, boolean tb, int m, int n, int k, double[] a, int lda, double[] b,
                                   int ldb, double beta, double[] c, int ldc) {
        openblas_nolapack.cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
    }

    /**
     * The kernel of every OpenBLAS this process has mapped, by file. ND4J's preset maps one libopenblas.so.0
     * twice, as itself and as a copy named libopenblas_nolapack.so.0 (the name Tessera's {@code Gemm} binds to);
     * each is opened locally, so their symbols do not interpose, and each picks its kernel when it loads.
     * {@code openblas_get_corename()} is not mapped by the 0.3.19 preset: it is looked up in each file.
     */
    public static Map<String, String> corenames() {
        Map<String, String> names = new TreeMap<>();
        for (String file : mappedOpenblas()) {
            names.put(file, corename(file));
        }
        return names;
    }

    /** The kernels every mapped OpenBLAS runs: one name when they agree, as they do when all loaded after choose. */
    private static String kernelOfEveryCopy() {
        Loader.load(openblas_nolapack.class);
        Set<String> kernels = new TreeSet<>(corenames().values());
        if (kernels.isEmpty()) {
            throw new IllegalStateException("OpenBLAS is loaded but no libopenblas is mapped in /proc/self/maps");
        }
        return String.join("/", kernels);
    }

    private static Set<String> mappedOpenblas() {
        Set<String> files = new TreeSet<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                int slash = line.indexOf('/');
                if (slash >= 0 && Path.of(line.substring(slash)).getFileName().toString().startsWith("libopenblas")) {
                    files.add(line.substring(slash));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/maps", e);
        }
        return files;
    }

    private static final int RTLD_NOW = 2;
    private static final int RTLD_NOLOAD = 4;

    /** openblas_get_corename() of the already loaded library {@code file} (dlopen with RTLD_NOLOAD loads nothing). */
    private static String corename(String file) {
        CLinker linker = CLinker.getInstance();
        MethodHandle dlopen = linker.downcallHandle(libc("dlopen"),
                MethodType.methodType(MemoryAddress.class, MemoryAddress.class, int.class),
                FunctionDescriptor.of(CLinker.C_POINTER, CLinker.C_POINTER, CLinker.C_INT));
        MethodHandle dlsym = linker.downcallHandle(libc("dlsym"),
                MethodType.methodType(MemoryAddress.class, MemoryAddress.class, MemoryAddress.class),
                FunctionDescriptor.of(CLinker.C_POINTER, CLinker.C_POINTER, CLinker.C_POINTER));
        MethodHandle dlclose = linker.downcallHandle(libc("dlclose"),
                MethodType.methodType(int.class, MemoryAddress.class),
                FunctionDescriptor.of(CLinker.C_INT, CLinker.C_POINTER));
        try (ResourceScope scope = ResourceScope.newConfinedScope()) {
            MemoryAddress handle = (MemoryAddress) dlopen.invokeExact(
                    CLinker.toCString(file, scope).address(), RTLD_NOW | RTLD_NOLOAD);
            if (handle.equals(MemoryAddress.NULL)) {
                throw new IllegalStateException(file + " is mapped but not loaded");
            }
            try {
                MemoryAddress symbol = (MemoryAddress) dlsym.invokeExact(handle,
                        CLinker.toCString("openblas_get_corename", scope).address());
                if (symbol.equals(MemoryAddress.NULL)) {
                    throw new IllegalStateException(file + " has no openblas_get_corename");
                }
                MethodHandle get = linker.downcallHandle(symbol, MethodType.methodType(MemoryAddress.class),
                        FunctionDescriptor.of(CLinker.C_POINTER));
                return CLinker.toJavaString((MemoryAddress) get.invokeExact()).strip();
            } finally {
                int ignored = (int) dlclose.invokeExact(handle);
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("openblas_get_corename of " + file + " failed", e);
        }
    }

    private static MemoryAddress libc(String function) {
        return CLinker.systemLookup().lookup(function)
                .orElseThrow(() -> new IllegalStateException("libc has no " + function));
    }

    /**
     * libc's setenv: OpenBLAS reads the C environment, which Java can read but not write. (Java's own copy, and
     * so System.getenv and the children a ProcessBuilder starts, do not see it; workers choose for themselves.)
     */
    private static void setenv(String name, String value) {
        CLinker linker = CLinker.getInstance();
        MethodHandle setenv = linker.downcallHandle(libc("setenv"),
                MethodType.methodType(int.class, MemoryAddress.class, MemoryAddress.class, int.class),
                FunctionDescriptor.of(CLinker.C_INT, CLinker.C_POINTER, CLinker.C_POINTER, CLinker.C_INT));
        try (ResourceScope scope = ResourceScope.newConfinedScope()) {
            MemorySegment n = CLinker.toCString(name, scope);
            MemorySegment v = CLinker.toCString(value, scope);
            int rc = (int) setenv.invokeExact(n.address(), v.address(), 1);
            if (rc != 0) {
                throw new IllegalStateException("setenv " + name + "=" + value + " failed: " + rc);
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("setenv " + name + " failed", e);
        }
    }
}
