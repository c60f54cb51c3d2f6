package dev.tessera.coordinator.cli;

import dev.tessera.worker.blas.BlasKernel;
import picocli.CommandLine.IVersionProvider;

/**
 * The version from the jar manifest (a build run from classes, IDE or tests, has none) and the OpenBLAS kernel
 * this machine computes with, the one thing of the environment that changes Tessera's speed several times over.
 */
final class VersionProvider implements IVersionProvider {

    @Override
    public String[] getVersion() {
        String version = Main.class.getPackage().getImplementationVersion();
        BlasKernel blas = BlasKernel.inUse();
        return new String[]{"tessera " + (version != null ? version : "(development build)"),
                "OpenBLAS kernel " + blas.kernel() + " (chosen by " + blas.chosenBy() + ")"};
    }
}
