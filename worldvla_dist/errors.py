"""Project exceptions: each says where it happened, what was expected and what came."""


class WorldVLAError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(WorldVLAError, ValueError):
    """A config value, preset name or YAML key is not one we accept."""


class TokenizationError(WorldVLAError, ValueError):
    """Input to a tokenizer (actions, images, token sequences) has the wrong shape, dtype or values."""


class CheckpointError(WorldVLAError, FileNotFoundError):
    """A checkpoint folder or file is missing, incomplete or of the wrong shape."""
