package dev.tessera.coordinator.cli;

import picocli.CommandLine.IVersionProvider;

/** The version from the jar manifest; a build run from classes (IDE, tests) has none. */
final class VersionProvider implements IVersionProvider {

    @Override
    public String[] getVersion() {
        String version = Main.class.getPackage().getImplementationVersion();
        return new String[]{"tessera " + (version != null ? version : "(development build)")};
    }
}
