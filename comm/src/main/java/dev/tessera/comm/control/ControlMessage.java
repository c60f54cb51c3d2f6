package dev.tessera.comm.control;

/**
 * A message on the control stream, serialised with Kryo. Only classes registered in {@link ControlCodec} can
 * be sent or received: Kryo is configured with {@code registrationRequired}, so a frame naming any other class
 * is rejected instead of instantiating it.
 */
public interface ControlMessage {
}
