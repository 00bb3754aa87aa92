"""Vision transformers: token sequences read as maps over the patch grid (with their prefix tokens apart),
attention recomputed for the blocks in view from their own queries and keys, attention rollout, and
token norms."""
