package dev.tessera.optimizers.co2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class Co2ConfigTest {

    @Test
    void defaultsAreTheNormativeOnes() {
        Co2Config d = Co2Config.defaults();
        assertEquals(3, d.tau());
        assertEquals(1.0, d.outerLr());
        assertEquals(0.5, d.outerMomentum());
        assertEquals(1.0, d.gapPenalty());
        assertFalse(d.clip());
        assertEquals(1.0, d.clipThreshold());
    }

    private static void assertRefused(String message, Runnable build) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, build::run);
        assertEquals(message, e.getMessage());
    }

    @Test
    void validationNamesTheKey() {
        assertRefused("co2.tau must be >= 1 (got 0)", () -> new Co2Config(0, 1, 0.5, 1, false, 1));
        assertRefused("co2.alpha must be > 0 and finite (got 0.0)", () -> new Co2Config(3, 0, 0.5, 1, false, 1));
        assertRefused("co2.alpha must be > 0 and finite (got NaN)",
                () -> new Co2Config(3, Double.NaN, 0.5, 1, false, 1));
        assertRefused("co2.beta must be in [0, 1) (got 1.0)", () -> new Co2Config(3, 1, 1.0, 1, false, 1));
        assertRefused("co2.beta must be in [0, 1) (got -0.1)", () -> new Co2Config(3, 1, -0.1, 1, false, 1));
        assertRefused("co2.lambda must be > 0 and finite (got 0.0)", () -> new Co2Config(3, 1, 0.5, 0, false, 1));
        assertRefused("co2.phi must be > 0 (got -1.0)", () -> new Co2Config(3, 1, 0.5, 1, true, -1));
        assertRefused("co2.phi must be > 0 (got 0.0)", () -> new Co2Config(3, 1, 0.5, 1, false, 0));
    }

    @Test
    void acceptsTheEdgesOfTheRanges() {
        new Co2Config(1, 1e-9, 0.0, 1e-9, true, 1e-9);
        new Co2Config(1, 1, 0.999, 1, false, 1);
    }
}
