"""worldvla-dist: WorldVLA (one autoregressive model that is a policy and a world model) at scale on LIBERO."""

__version__ = "0.1.0"
