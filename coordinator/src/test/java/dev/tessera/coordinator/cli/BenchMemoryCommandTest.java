package dev.tessera.coordinator.cli;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

/** {@code bench memory} refuses bad flags before it starts any job: exit 2, one line naming the flag. */
class BenchMemoryCommandTest {

    static Stream<Arguments> badFlags() {
        return Stream.of(
                arguments("bench memory", "--preset"),
                arguments("bench memory --preset huge", "--preset"),
                arguments("bench memory --preset wide --optimizer sgd", "--optimizer"),
                arguments("bench memory --preset wide --stage 4", "--stage must be 0, 1, 2 or 3 (got 4)"),
                arguments("bench memory --preset wide --stage 1,-1", "--stage must be 0, 1, 2 or 3 (got -1)"),
                arguments("bench memory --preset wide --world 3", "--world must divide the global batch of 8 (got 3)"),
                arguments("bench memory --preset wide --world 0", "--world must divide the global batch of 8 (got 0)"),
                arguments("bench memory --preset wide --world two", "--world"),
                arguments("bench memory --preset wide --bogus", "Unknown option: '--bogus'"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badFlags")
    void exitsTwoWithOneLine(String argLine, String expected) {
        CliRunner r = CliRunner.run(argLine.split(" "));
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().startsWith("tessera: "), r.err());
        assertEquals(1, r.err().lines().count(), () -> "one line expected: " + r.err());
        assertTrue(r.err().contains(expected), () -> "'" + r.err().strip() + "' lacks '" + expected + "'");
        assertFalse(r.err().contains("\tat "), "no stack trace");
        assertEquals("", r.out(), "no job may start on bad input");
    }
}
