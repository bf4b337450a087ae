"""The model picker's commands: ``deskmate.listModels`` and ``deskmate.setModel``."""

from __future__ import annotations

from typing import Any

from ..engine.model_choice import MAX_MODEL_LENGTH
from .arguments import Arguments, invalid
from .commands import command, session_ref
from .server import DeskmateServer


@command("deskmate.listModels")
async def list_models(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """The models the server offers (its ``/models``) and the one the workspace uses."""
    folder = session_ref(ls, arguments).workspace_uri
    served, current = await ls.assistant.list_models(folder)
    return {
        "models": [{"id": model} for model in served],
        "current": current,
        "default": ls.assistant.settings.model,
        "workspaceUri": folder,
    }


@command("deskmate.setModel")
async def set_model(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Use a model for the workspace's asks from now on (``model`` null: the model setting again)."""
    model = arguments.text("model", max_length=MAX_MODEL_LENGTH)
    if model is None and "model" not in arguments.values:
        raise invalid(arguments.command, '"model" is required (a model id, or null for the model setting)')
    folder = session_ref(ls, arguments).workspace_uri
    if folder is None:
        raise invalid(
            arguments.command,
            "no workspace folder: open a folder (or pass workspaceUri) to choose its model; "
            "without one, the model setting applies",
        )
    current = await ls.assistant.set_model(folder, model)
    return {"model": current, "workspaceUri": folder}
