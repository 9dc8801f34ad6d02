"""Training LMCodec with Accelerate on `datasets` (see the README's Training section)."""
