"""``deskmate memory add|list|forget``: the project memory from the terminal (docs/protocol.md#project-memory)."""

from __future__ import annotations

import argparse


def add_memory_parser(commands) -> None:
    memory = commands.add_parser(
        "memory", help="this project's memory: facts sent with every question (add, list, forget)"
    )
    verbs = memory.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="remember a fact in every session of this project")
    add.add_argument("text", nargs="+")
    verbs.add_parser("list", help="this project's memories and the instruction files read (AGENTS.md)")
    forget = verbs.add_parser("forget", help="forget a memory (its id from `deskmate memory list`)")
    forget.add_argument("memory_id", metavar="ID")


async def terminal_memory(assistant, args: argparse.Namespace, folder: str) -> int:
    from .cli import when
    from .terminal import strip_controls

    memories = assistant.project_memory
    if args.verb == "add":
        memory, after = await memories.remember(" ".join(args.text), folder)
        print(f"Remembered ({memory.id}); this project has {len(after.memories)} memories.")
        return 0
    if args.verb == "forget":
        await memories.forget(args.memory_id, folder)
        print(f"Forgot {args.memory_id}.")
        return 0
    loaded = await memories.load(folder)
    if not loaded.memories:
        print("No memories yet: add one with `deskmate memory add TEXT`.")
    for memory in loaded.memories:
        print(f"{memory.id}  {when(memory.timestamp):16}  {strip_controls(memory.content)}")
    for file in loaded.instructions:
        cut = f" (first {len(file.text):,} of {file.characters:,} characters)" if file.truncated else ""
        print(f"Instructions read: {strip_controls(str(file.path))}{cut}")
    for path, reason in loaded.refused:
        print(f"Instructions not read: {strip_controls(str(path))}: {strip_controls(reason)}")
    return 0
