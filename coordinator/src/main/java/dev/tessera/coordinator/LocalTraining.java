package dev.tessera.coordinator;

import dev.tessera.coordinator.run.ProgressBar;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.coordinator.run.RunRecorder;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.parallel.DeviceMesh;
import dev.tessera.worker.parallel.MemoryProbe;
import dev.tessera.worker.run.Replica;
import dev.tessera.worker.run.WorkerJob;
import dev.tessera.worker.train.MemorySampling;
import dev.tessera.worker.train.PeakRss;
import dev.tessera.worker.train.TrainingLoop;
import java.io.PrintStream;
import java.nio.file.Path;

/** Trains a job in this process: one replica, the whole global batch (the mesh of size 1). */
public final class LocalTraining implements TrainAction {

    @Override
    public RunSummary run(TrainRequest request) throws Exception {
        JobConfig job = request.job();
        RunDirectory directory = request.directory();
        Path resume = request.resumeOrNull();
        PrintStream out = request.log();
        long wallStart = System.nanoTime();
        Path checkpoint = resume == null ? null : Checkpoint.open(resume).dir();
        BlasKernel.inUse(); // refuses a kernel that computes wrong results before any work starts
        WorkerJob workerJob = WorkerJob.of(job, directory.root(), checkpoint);
        MemoryProbe probe = MemoryProbe.on();
        Replica replica = Replica.build(workerJob, DeviceMesh.single(), probe);
        out.println("data: " + replica.data().describe());
        replica.data().warnings().forEach(System.err::println);
        describeModel(out, workerJob.model(), replica.model().parameters().numel(), directory);
        if (checkpoint != null) {
            out.println("resumed from " + checkpoint + " at step " + replica.completedSteps());
        }
        try (RunRecorder recorder = RunRecorder.open(directory, ProgressBar.on(out), replica.completedSteps(),
                job.checkpoint().retention(), request.listener())) {
            ParameterStore store = replica.model().parameters();
            TrainingLoop.Result result = replica.train(new MemorySampling(probe, store, recorder.listener()));
            RunSummary summary = RunSummary.of(result, replica.data(), (System.nanoTime() - wallStart) / 1e9,
                    store.numel(), probe.peakParamBytes(), probe.peakGradBytes(), PeakRss.bytes(), replica.optimizer().stateBytes(),
                    BlasKernel.inUse(), job.toMap());
            recorder.finish(summary, "Tessera: " + directory.root().getFileName());
            out.println(summary.doneLine(directory.summaryFile()));
            return summary;
        }
    }


    static void describeModel(PrintStream out, ModelConfig model, long params, RunDirectory directory) {
        out.printf("model: %,d parameters, %d layers, d_model %d%s; run directory %s%n", params, model.nLayers(),
                model.dModel(), model.nExperts() > 0 ? ", " + model.nExperts() + " experts top-" + model.topK() : "",
                directory.root());
    }
}
