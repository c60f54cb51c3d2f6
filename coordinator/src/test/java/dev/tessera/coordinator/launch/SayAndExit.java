package dev.tessera.coordinator.launch;

/** A worker for launcher tests: prints its first argument on stderr and exits with code 3. */
public final class SayAndExit {

    private SayAndExit() {
    }

    public static void main(String[] args) {
        System.err.println(args[0]);
        System.exit(3);
    }
}
