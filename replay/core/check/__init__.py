"""`replay check`, the noise floor of a capsule over repeated replays: the entry point is ``floor.check``."""
