package dev.tessera.coordinator;

import dev.tessera.comm.ChildJvm;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Starts a test class's workers with C1 only ({@code -XX:TieredStopAtLevel=1}, through
 * {@link ChildJvm#CHILD_OPTIONS_PROPERTY}), for classes whose many jobs train tiny models for a few steps: there C2's
 * compile work is most of a worker's start-up CPU, and a two-worker job takes 9.7 s instead of 13.2. Not for a class
 * that measures a worker (its memory, its speed) or trains a real preset, whose vector kernels C1 does not compile.
 */
final class QuickStartChildJvms implements BeforeAllCallback, AfterAllCallback {

    static final String OPTIONS = "-XX:TieredStopAtLevel=1";

    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(
            QuickStartChildJvms.class);
    private static final String BEFORE = "before";

    @Override
    public void beforeAll(ExtensionContext context) {
        String before = System.setProperty(ChildJvm.CHILD_OPTIONS_PROPERTY, OPTIONS);
        context.getStore(NAMESPACE).put(BEFORE, before == null ? "" : before);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        String before = context.getStore(NAMESPACE).remove(BEFORE, String.class);
        if (before == null || before.isEmpty()) {
            System.clearProperty(ChildJvm.CHILD_OPTIONS_PROPERTY);
        } else {
            System.setProperty(ChildJvm.CHILD_OPTIONS_PROPERTY, before);
        }
    }
}
