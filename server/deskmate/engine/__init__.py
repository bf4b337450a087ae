"""The engine: asking, sessions, prompts and model calls. Knows nothing of LSP."""

from .assistant import AskResult, Assistant, EngineError, SessionBusy, SessionRef, SessionView
from .model_client import ConfigurationError, ModelClient, ModelError, Usage
from .settings import Settings, SettingsError, settings_from_environment

__all__ = [
    "AskResult",
    "Assistant",
    "ConfigurationError",
    "EngineError",
    "ModelClient",
    "ModelError",
    "SessionBusy",
    "SessionRef",
    "SessionView",
    "Settings",
    "SettingsError",
    "Usage",
    "settings_from_environment",
]
