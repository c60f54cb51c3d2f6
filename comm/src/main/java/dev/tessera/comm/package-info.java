/** Data plane: Aeron transport, collectives on process groups, gradient codecs, Kryo control messages. */
package dev.tessera.comm;
