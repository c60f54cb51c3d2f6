package dev.tessera.worker.parallel;

import dev.tessera.worker.model.ParameterStore;
import java.util.ArrayList;
import java.util.List;

/** Cuts a flat buffer into gradient buckets on tensor boundaries, walking the tensors last to first. */
final class Buckets {

    private Buckets() {
    }

    /**
     * Returns {@code [start, end)} element ranges, the last tensors' bucket first. A bucket closes once it holds
     * at least {@code capElements}; a tensor larger than the cap is a bucket of its own. A bucket never holds more
     * than {@code maxElements} (what one view of the buffer can span): a tensor that would take it over starts
     * the next one. Tensors that are not neighbours in the buffer (a selection of its tensors) never share a bucket.
     */
    static long[][] reverseOrder(List<ParameterStore.Tensor> tensors, long capElements, long maxElements) {
        List<long[]> out = new ArrayList<>();
        long end = -1;
        long start = -1;
        for (int i = tensors.size() - 1; i >= 0; i--) {
            ParameterStore.Tensor t = tensors.get(i);
            if (end >= 0 && (end - t.offset() > maxElements || t.end() != start)) {
                out.add(new long[] {start, end});
                end = -1;
            }
            if (end < 0) {
                end = t.end();
            }
            start = t.offset();
            if (end - start >= capElements) {
                out.add(new long[] {start, end});
                end = -1;
            }
        }
        if (end >= 0) {
            out.add(new long[] {start, end});
        }
        return out.toArray(new long[0][]);
    }
}
