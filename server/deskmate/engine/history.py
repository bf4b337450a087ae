"""Fitting a session's history into a prompt: its summary, its pinned messages, and the recent
turns that fit the budget.

What the model is sent for a question (docs/daemon.md, "What is sent to the model"):

1. the system prompt, followed by the session's summary of earlier turns when it has one;
2. every pinned message, in order (pins are never summarized away nor trimmed);
3. the most recent turns after the summary's range, as many whole messages as fit;
4. the question, with its editor context.

Nothing here changes what is stored: the summary names the messages it stands for, and
they stay in the store. Turns that neither the summary covers nor the budget holds are
``dropped``: the sign that the session needs compacting (engine/compaction.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..memory import Message
from ..memory.models import SessionMeta, new_message_id, now_iso
from .prompt import failed_turns, with_context

SUMMARY_HEADING = "Summary of the earlier conversation (its messages are not repeated here):"

Count = Callable[[str], int]  # the tokens one message of this content takes


@dataclass(frozen=True)
class Summary:
    """A summary of the messages ``from_id`` .. ``to_id`` of a session (both included)."""

    id: str
    from_id: str
    to_id: str
    text: str
    created_at: str
    covered: int  # how many messages it stands for
    model: str | None = None
    instructions: str | None = None

    @classmethod
    def new(cls, first: Message, last: Message, text: str, covered: int, **kw: Any) -> Summary:
        return cls(new_message_id(), first.id, last.id, text, now_iso(), covered, **kw)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "from": self.from_id,
            "to": self.to_id,
            "text": self.text,
            "createdAt": self.created_at,
            "covered": self.covered,
        }
        if self.model:
            record["model"] = self.model
        if self.instructions:
            record["instructions"] = self.instructions
        return record

    @classmethod
    def of_record(cls, record: dict[str, Any]) -> Summary | None:
        """The summary a stored record holds; None for one this deskmate cannot use."""
        fields = [record.get(key) for key in ("id", "from", "to", "text", "createdAt")]
        if not all(isinstance(value, str) and value for value in fields):
            return None
        covered = record.get("covered")
        model, instructions = record.get("model"), record.get("instructions")
        return cls(
            *fields,  # type: ignore[arg-type]
            covered=covered if type(covered) is int and covered >= 0 else 0,
            model=model if isinstance(model, str) else None,
            instructions=instructions if isinstance(instructions, str) else None,
        )


def summaries_of(meta: SessionMeta) -> list[Summary]:
    """The session's summaries, oldest first (records this deskmate cannot read are left out)."""
    return [s for s in map(Summary.of_record, meta.summaries) if s is not None]


def active_summary(meta: SessionMeta, history: list[Message]) -> tuple[Summary, int] | None:
    """The summary prompts use, and the index of the last message it covers: the one reaching
    furthest into the history (the newest of those on a tie). Summaries naming messages the
    history does not hold (a fork's, a damaged record) are not used."""
    summaries = summaries_of(meta)
    if not summaries:
        return None
    wanted = {s.from_id for s in summaries} | {s.to_id for s in summaries}
    # Only the ids summaries name: this runs on every ask, over histories of 10,000 messages.
    positions = {m.id: index for index, m in enumerate(history) if m.id in wanted}
    best: tuple[Summary, int] | None = None
    for summary in summaries:
        end = positions.get(summary.to_id)
        start = positions.get(summary.from_id)
        if end is None or start is None or start > end:
            continue
        if best is None or end >= best[1]:
            best = (summary, end)
    return best


def system_content(system_prompt: str, summary: Summary | None) -> str:
    """The system message: the system prompt, then the summary of earlier turns if any."""
    if summary is None:
        return system_prompt
    block = f"{SUMMARY_HEADING}\n{summary.text}"
    return f"{system_prompt}\n\n{block}" if system_prompt else block


def sendable(message: Message) -> str:
    """A stored message as the model sees it (a question with its editor context)."""
    return with_context(message.content, message.context) if message.role == "user" else message.content


@dataclass
class Fitted:
    """A prompt built from a history, and what it left out."""

    messages: list[dict[str, str]]
    tokens: int  # the whole prompt, as counted
    history_tokens: int  # the summary, pinned messages and earlier turns in it
    summary: Summary | None
    covered_until: int  # index of the last message the summary stands for; -1: none
    sent: list[int] = field(default_factory=list)  # indexes of the history's messages sent
    recent: list[int] = field(default_factory=list)  # of those, the recent turns (not the pins)
    # Messages neither summarized nor sent lie in this range of indexes (found when asked:
    # an ask only needs to know whether there is one).
    left_out_range: range = range(0)
    left_out: Callable[[int], bool] = lambda index: False

    @property
    def dropped(self) -> list[int]:
        """Indexes of the messages neither summarized nor sent, oldest first."""
        return [i for i in self.left_out_range if self.left_out(i)]

    def drops_any(self) -> bool:
        """Whether any message is neither summarized nor sent (looked for newest first)."""
        return any(self.left_out(i) for i in reversed(self.left_out_range))


def fit(
    system_prompt: str,
    history: list[Message],
    question: Message | None,
    meta: SessionMeta,
    budget: int,
    count: Count,
) -> Fitted:
    """The prompt for ``question`` (None: the prompt as the next ask would start it), with at
    most ``budget`` tokens of recent turns beside the summary and the pinned messages, which
    are always sent (callers check that they fit the window)."""
    found = active_summary(meta, history)
    summary, covered_until = found if found is not None else (None, -1)
    pinned_ids = set(meta.pinned_messages)
    skipped = failed_turns(history)

    def usable(index: int) -> bool:
        message = history[index]
        return message.role != "system" and bool(message.content) and index not in skipped

    pinned = [i for i, m in enumerate(history) if m.id in pinned_ids and usable(i)] if pinned_ids else []
    system = system_content(system_prompt, summary)
    fixed = count(system) - (count(system_prompt) if system_prompt else 0) if summary else 0
    fixed += sum(count(sendable(history[i])) for i in pinned)
    room = budget - fixed
    recent: list[int] = []
    for index in range(len(history) - 1, covered_until, -1):
        if not usable(index) or history[index].id in pinned_ids:
            continue
        cost = count(sendable(history[index]))
        if cost > room:
            break
        room -= cost
        recent.append(index)
    recent.reverse()
    # Start on a question: an answer without its question only confuses the model (one whose
    # question is pinned has it, sent just before).
    sent_pins = set(pinned)
    while recent and history[recent[0]].role == "assistant" and recent[0] - 1 not in sent_pins:
        recent.pop(0)
    first_recent = recent[0] if recent else len(history)

    def left_out(index: int) -> bool:
        message = history[index]
        return (
            bool(message.content)
            and message.role != "system"
            and index not in skipped
            and message.id not in pinned_ids
        )

    chosen = sorted(set(pinned) | set(recent))
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": history[i].role, "content": sendable(history[i])} for i in chosen]
    history_tokens = sum(count(m["content"]) for m in messages[1 if system else 0 :])
    if summary is not None:
        history_tokens += count(system) - (count(system_prompt) if system_prompt else 0)
    if question is not None:
        messages.append({"role": "user", "content": with_context(question.content, question.context)})
    tokens = sum(count(m["content"]) for m in messages)
    return Fitted(
        messages,
        tokens,
        history_tokens,
        summary,
        covered_until,
        chosen,
        recent,
        range(covered_until + 1, first_recent),
        left_out,
    )
