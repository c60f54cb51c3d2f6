package dev.tessera.worker.job;

/** {@code compression.fedzip_encoding}: FedZip's lossless stage (ALGORITHMS.md 5). */
public enum FedZipEncoding {
    HUFFMAN, POSITION, GAP
}
