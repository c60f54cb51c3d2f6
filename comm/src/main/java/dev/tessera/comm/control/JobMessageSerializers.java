package dev.tessera.comm.control;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;

import static dev.tessera.comm.control.ControlCodec.checkedLength;
import static dev.tessera.comm.control.ControlCodec.readString;
import static dev.tessera.comm.control.ControlCodec.writeString;

/**
 * Serializers of the workers' reports to the coordinator (ids 105-108, appended to {@link ControlCodec}'s): fixed
 * fields in a fixed order, strings through the codec's checked length prefixes. The assignment the other way
 * lives with the job spec above comm (see {@link ControlType}).
 */
final class JobMessageSerializers {

    private JobMessageSerializers() {
    }

    static void register(Kryo kryo) {
        kryo.register(StepReport.class, new Serializer<StepReport>() {
            @Override
            public void write(Kryo k, Output out, StepReport m) {
                out.writeInt(m.rank);
                out.writeLong(m.step);
                out.writeDouble(m.loss);
                out.writeDouble(m.auxLoss);
                out.writeDouble(m.lr);
                out.writeDouble(m.gradNorm);
                out.writeDouble(m.tokensPerSecond);
                out.writeDouble(m.stepSeconds);
                out.writeDouble(m.exposedCommSeconds);
                out.writeDouble(m.attentionWaitSeconds);
                out.writeLong(m.wireBytes);
                double[] moe = m.moeLayers == null ? new double[0] : m.moeLayers;
                out.writeInt(m.moeExperts);
                out.writeInt(moe.length);
                out.writeDoubles(moe, 0, moe.length);
                out.writeInt(m.choiceLayers.length);
                for (int i = 0; i < m.choiceLayers.length; i++) {
                    writeString(out, m.choiceLayers[i]);
                    out.writeDouble(m.choiceValues[i]);
                }
            }

            @Override
            public StepReport read(Kryo k, Input in, Class<? extends StepReport> type) {
                StepReport m = new StepReport(in.readInt(), in.readLong(), in.readDouble(), in.readDouble(),
                        in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble(),
                        in.readDouble(), in.readLong(), 0, null);
                m.moeExperts = in.readInt();
                int count = in.readInt();
                checkedLength(in, count < 0 ? -1 : (int) Math.min(Integer.MAX_VALUE, count * (long) Double.BYTES));
                m.moeLayers = in.readDoubles(count);
                int choices = in.readInt();
                // Each choice is at least a length and a double: a count the frame cannot hold is refused.
                checkedLength(in, choices < 0 ? -1 : (int) Math.min(Integer.MAX_VALUE, choices * 9L));
                m.choiceLayers = new String[choices];
                m.choiceValues = new double[choices];
                for (int i = 0; i < choices; i++) {
                    m.choiceLayers[i] = readString(in);
                    m.choiceValues[i] = in.readDouble();
                }
                return m;
            }
        }, 105);
        kryo.register(EvalReport.class, new Serializer<EvalReport>() {
            @Override
            public void write(Kryo k, Output out, EvalReport m) {
                out.writeInt(m.rank);
                out.writeLong(m.step);
                out.writeDouble(m.loss);
            }

            @Override
            public EvalReport read(Kryo k, Input in, Class<? extends EvalReport> type) {
                return new EvalReport(in.readInt(), in.readLong(), in.readDouble());
            }
        }, 106);
        kryo.register(CheckpointReport.class, new Serializer<CheckpointReport>() {
            @Override
            public void write(Kryo k, Output out, CheckpointReport m) {
                out.writeInt(m.rank);
                out.writeLong(m.step);
                writeString(out, m.path);
            }

            @Override
            public CheckpointReport read(Kryo k, Input in, Class<? extends CheckpointReport> type) {
                return new CheckpointReport(in.readInt(), in.readLong(), readString(in));
            }
        }, 107);
        kryo.register(WorkerFinished.class, new Serializer<WorkerFinished>() {
            @Override
            public void write(Kryo k, Output out, WorkerFinished m) {
                out.writeInt(m.rank);
                writeString(out, m.error);
                out.writeBoolean(m.userError);
                out.writeInt(m.suspectRank);
                out.writeLong(m.steps);
                out.writeLong(m.tokens);
                out.writeDouble(m.finalLoss);
                out.writeDouble(m.evalLoss);
                out.writeDouble(m.tokensPerSecond);
                out.writeDouble(m.trainSeconds);
                out.writeDouble(m.exposedCommFraction);
                out.writeLong(m.stateBytes);
                out.writeLong(m.paramBytes);
                out.writeLong(m.gradBytes);
                out.writeLong(m.peakRssBytes);
            }

            @Override
            public WorkerFinished read(Kryo k, Input in, Class<? extends WorkerFinished> type) {
                WorkerFinished m = new WorkerFinished();
                m.rank = in.readInt();
                m.error = readString(in);
                m.userError = in.readBoolean();
                m.suspectRank = in.readInt();
                m.steps = in.readLong();
                m.tokens = in.readLong();
                m.finalLoss = in.readDouble();
                m.evalLoss = in.readDouble();
                m.tokensPerSecond = in.readDouble();
                m.trainSeconds = in.readDouble();
                m.exposedCommFraction = in.readDouble();
                m.stateBytes = in.readLong();
                m.paramBytes = in.readLong();
                m.gradBytes = in.readLong();
                m.peakRssBytes = in.readLong();
                return m;
            }
        }, 108);
    }
}
