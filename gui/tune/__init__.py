"""The Tune tab: A/B against plain decoding, sweeps with heatmaps, applying settings."""
