package dev.tessera.worker.run;

import dev.tessera.comm.Communicator;
import dev.tessera.comm.control.CheckpointReport;
import dev.tessera.comm.control.EvalReport;
import dev.tessera.comm.control.StepReport;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;
import java.nio.file.Path;

/**
 * Sends rank 0's progress to the coordinator. Every replica computes the same global loss, so one report per
 * step is the whole picture; the other ranks stay quiet until they finish.
 */
final class CoordinatorReporter implements TrainingListener {

    private final Communicator comm;
    private final int coordinator;
    private final int rank;

    CoordinatorReporter(Communicator comm, int coordinator, int rank) {
        this.comm = comm;
        this.coordinator = coordinator;
        this.rank = rank;
    }

    @Override
    public void onStep(StepMetrics m) {
        if (rank == 0) {
            StepReport report = new StepReport(rank, m.step(), m.loss(), m.auxLoss(), m.lr(), m.gradNorm(),
                    m.tokensPerSecond(), m.stepSeconds(), m.commWaitSeconds(), m.attentionWaitSeconds(),
                    m.wireBytes(), m.moe().experts(), m.moe().layers());
            report.choiceLayers = m.compressionChoice().keySet().toArray(new String[0]);
            report.choiceValues = m.compressionChoice().values().stream().mapToDouble(Double::doubleValue).toArray();
            comm.sendControl(coordinator, report);
        }
    }

    @Override
    public void onEval(long step, double evalLoss) {
        if (rank == 0) {
            comm.sendControl(coordinator, new EvalReport(rank, step, evalLoss));
        }
    }

    /**
     * In a cluster {@code directory} is the staging folder; the coordinator completes the checkpoint. Rank 0
     * reports it once every rank's part is written (the ranks pass a barrier first).
     */
    @Override
    public void onCheckpoint(long step, Path directory) {
        if (rank == 0) {
            comm.sendControl(coordinator, new CheckpointReport(rank, step, directory.toString()));
        }
    }
}
