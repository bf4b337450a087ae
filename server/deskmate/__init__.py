"""deskmate: an editor assistant daemon with persistent, per-project memory."""

__version__ = "0.1.0"
