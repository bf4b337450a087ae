"""Size limits on what a session holds, so one oversized value cannot make every listing huge.

Documented for users in docs/security.md; the LSP layer refuses larger input
with InvalidParams naming the field, and stores clip what they read.
"""

MAX_TITLE_LENGTH = 200  # characters; longer titles are cut with an ellipsis
MAX_QUESTION_LENGTH = 200_000  # characters (about 50,000 tokens)
MAX_CONTEXT_LENGTH = 1_048_576  # characters of context text sent with a question
MAX_CONTEXT_FILE_BYTES = 1_048_576  # bytes read from a file named as context; the rest is cut with a note


def clip_title(title: str) -> str:
    """``title`` cut to MAX_TITLE_LENGTH characters, ending in an ellipsis when cut."""
    if len(title) <= MAX_TITLE_LENGTH:
        return title
    return title[: MAX_TITLE_LENGTH - 1] + "…"


MAX_TAG_LENGTH = 50  # characters in one tag
MAX_TAGS = 20  # tags on one session
