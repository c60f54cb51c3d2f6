package dev.tessera.comm.control;

/** A free-form control message (status lines, simple commands) until richer message types are added. */
public final class TextMessage implements ControlMessage {
    public String text;

    public TextMessage() {
    }

    public TextMessage(String text) {
        this.text = text;
    }
}
