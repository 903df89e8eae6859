"""The systems the signaling server is compared with, started by the benchmark."""
