"""Floor 4: anomalib's models on the benchmark's protocol (anomalib_bridge; the optional anomalib extra)."""
