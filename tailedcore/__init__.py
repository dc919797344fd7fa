"""TailedCore benchmark: noisy long-tailed unified anomaly detection (CVPR 2025), reproducible."""

__version__ = "0.1.0"
