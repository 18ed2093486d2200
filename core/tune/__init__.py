"""Measuring draft settings: A/B against plain decoding, sweeps, calibration."""
