"""The engine: asking, sessions, prompts and model calls. Knows nothing of LSP."""

from .asking import AskResult, AskRunner
from .assistant import Assistant, EngineStatus
from .errors import EngineError, InvalidArgument, SessionBusy
from .model_client import ConfigurationError, ModelClient, ModelError, Usage
from .sessions import SessionRef, Sessions, SessionView
from .settings import Settings, SettingsError, settings_from_environment

__all__ = [
    "AskResult",
    "AskRunner",
    "Assistant",
    "ConfigurationError",
    "EngineError",
    "InvalidArgument",
    "EngineStatus",
    "ModelClient",
    "ModelError",
    "SessionBusy",
    "SessionRef",
    "SessionView",
    "Sessions",
    "Settings",
    "SettingsError",
    "Usage",
    "settings_from_environment",
]
