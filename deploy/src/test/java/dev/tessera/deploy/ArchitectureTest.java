package dev.tessera.deploy;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.library.dependencies.SliceAssignment;
import com.tngtech.archunit.library.dependencies.SliceIdentifier;

/**
 * The dependency rules of DESIGN.md, checked on the main classes of every module. It lives in deploy because
 * only there are all modules on one classpath.
 */
@AnalyzeClasses(packages = "dev.tessera", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {

    private static final String COMM = "dev.tessera.comm..";
    private static final String OPTIMIZERS = "dev.tessera.optimizers..";
    private static final String WORKER = "dev.tessera.worker..";
    private static final String COORDINATOR = "dev.tessera.coordinator..";
    private static final String EXAMPLES = "dev.tessera.examples..";

    /** Every package of Tessera is its own slice, so a cycle between any two packages is reported. */
    private static final SliceAssignment EACH_PACKAGE = new SliceAssignment() {
        @Override
        public SliceIdentifier getIdentifierOf(JavaClass javaClass) {
            String pkg = javaClass.getPackageName();
            return pkg.startsWith("dev.tessera.") ? SliceIdentifier.of(pkg) : SliceIdentifier.ignore();
        }

        @Override
        public String getDescription() {
            return "each package of dev.tessera";
        }
    };

    // Arrows run one way (examples -> coordinator -> worker -> optimizers, comm), so a lower module never
    // learns about the modules built on it; a pom can add a reverse dependency, this rule names it.
    @ArchTest
    static final ArchRule modulesDependOneWay = layeredArchitecture()
            .consideringOnlyDependenciesInLayers()
            .withOptionalLayers(true)
            .layer("comm").definedBy(COMM)
            .layer("optimizers").definedBy(OPTIMIZERS)
            .layer("worker").definedBy(WORKER)
            .layer("coordinator").definedBy(COORDINATOR)
            .layer("examples").definedBy(EXAMPLES)
            .whereLayer("examples").mayNotBeAccessedByAnyLayer()
            .whereLayer("coordinator").mayOnlyBeAccessedByLayers("examples")
            .whereLayer("worker").mayOnlyBeAccessedByLayers("coordinator", "examples")
            .whereLayer("optimizers").mayOnlyBeAccessedByLayers("worker", "coordinator", "examples");

    // A package cycle means neither package can be understood, tested or moved without the other.
    @ArchTest
    static final ArchRule noPackageCycles = slices()
            .assignedFrom(EACH_PACKAGE)
            .should().beFreeOfCycles();

    // The coordinator is the top of the system: its CLI (coordinator.cli) and the examples drive it, and
    // nothing below may reach up into it, so the same code runs under any front end.
    @ArchTest
    static final ArchRule onlyTheCliAndExamplesUseTheCoordinator = noClasses()
            .that().resideOutsideOfPackages(COORDINATOR, EXAMPLES)
            .should().dependOnClassesThat().resideInAPackage(COORDINATOR)
            .because("only the CLI (dev.tessera.coordinator.cli), the coordinator itself and the examples"
                    + " may use the coordinator");

    // The model owns the small interfaces it calls (gradient sync, parameter fetch, attention exchange,
    // expert dispatch); parallelize plugs the parallel package's implementations in from outside.
    @ArchTest
    static final ArchRule modelDoesNotImportParallel = noClasses()
            .that().resideInAPackage("dev.tessera.worker.model..")
            .should().dependOnClassesThat().resideInAPackage("dev.tessera.worker.parallel..")
            .because("the model package owns the interfaces it calls and the parallel package implements them"
                    + " (DESIGN.md, issue 14)");

    // Spark is provided by spark-submit and absent everywhere else (tessera train, the workers' JVMs): only the
    // Spark launcher and the examples' Spark programs, which spark-submit runs, may touch it, or Scala, which comes
    // with it.
    @ArchTest
    static final ArchRule onlyTheSparkLauncherUsesSpark = noClasses()
            .that().resideOutsideOfPackages("dev.tessera.coordinator.spark..", "dev.tessera.examples.spark..")
            .should().dependOnClassesThat().resideInAnyPackage("org.apache.spark..", "scala..")
            .because("Spark is a provided dependency: only dev.tessera.coordinator.spark and the Spark examples"
                    + " (dev.tessera.examples.spark) run where it exists");
}
