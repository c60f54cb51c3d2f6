package dev.tessera.worker.cluster;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Seeds and port ranges: members that share an address take one port each; one alone on its address, one port. */
class ClusterSettingsTest {

    @Test
    void loopbackMembersShareOneAddressAndTryAPortEach() {
        ClusterSettings settings = ClusterSettings.loopback("job", "t", 6100, 3, 60);
        assertEquals("127.0.0.1", settings.bindHost());
        assertEquals(List.of("127.0.0.1:6100", "127.0.0.1:6101", "127.0.0.1:6102"), settings.seeds());
        assertEquals("6100..6102", settings.portRange());
    }

    @Test
    void membersOnTheirOwnAddressesAreSeededAtTheFirstPort() {
        List<String> seeds = ClusterSettings.seeds(List.of("198.18.4.2", "198.18.4.3", "198.18.4.1"), 5701);
        assertEquals(List.of("198.18.4.2:5701", "198.18.4.3:5701", "198.18.4.1:5701"), seeds);
        ClusterSettings worker = ClusterSettings.member("job", "t", "198.18.4.3", 5701, seeds, 60);
        assertEquals("198.18.4.3", worker.bindHost());
        assertEquals(1, worker.portCount());
    }

    @Test
    void anAddressSharedByTwoMembersGetsTwoPorts() {
        List<String> seeds = ClusterSettings.seeds(List.of("10.0.0.5", "10.0.0.5", "10.0.0.9"), 5701);
        assertEquals(List.of("10.0.0.5:5701", "10.0.0.5:5702", "10.0.0.9:5701"), seeds);
        assertEquals(2, ClusterSettings.member("job", "t", "10.0.0.5", 5701, seeds, 60).portCount());
    }

    @Test
    void aMemberWhoseAddressIsNoSeedIsRefused() {
        List<String> seeds = ClusterSettings.seeds(List.of("10.0.0.5"), 5701);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ClusterSettings.member("job", "t", "10.0.0.6", 5701, seeds, 60));
        assertEquals("bind address 10.0.0.6 is not among the seeds [10.0.0.5:5701]", e.getMessage());
    }
}
