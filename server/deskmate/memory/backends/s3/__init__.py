"""S3Backend: sessions in an S3-compatible object store; an append never rewrites the history.

Objects under ``<prefix>sessions/<id>/`` (described for users in docs/storage.md):

- ``manifest.json``: title, workspaceUri, createdAt, updatedAt, meta (the metadata record; tags too,
  for older readers), messageCount, and where
  the history is: ``generation`` (a directory that ``save`` replaces whole), ``baseMessages``
  (how many messages its ``base.json`` holds), ``chunks`` and ``next``.
- ``<generation>/base.json``: the messages a ``save`` wrote.
- ``<generation>/s<n>.json``: segment n, the messages of one append (a turn is one object, so
  all or nothing). Created with ``If-None-Match: *``: a writer that loses a number takes the next.
- ``<generation>/c<from>-<to>.json``: segments from..to-1 compacted into one object once 64 are
  counted; 16 chunks of one size merge into one, so a load is a few dozen GETs.

The manifest is only replaced with ``If-Match`` (compare and swap). ``next`` is the first segment
its counts leave out: a writer that crashed after writing its segment left it at or past
``next``, where a load finds it by listing and the next append counts it. Compaction deletes
what it merged only once the manifest names the chunk, so a writer holding an old manifest may
re-create a freed number below the compacted range; each segment carries a random token, and
that writer sees the chunk holds another token there, deletes its copy and appends again.

The modules, one job each:

- ``backend.py``: ``S3Backend``, the ``MemoryBackend``; its URL; ``save`` and ``delete``.
- ``client.py``: requests to the bucket and the user-facing error for each failure.
- ``layout.py``: object keys, generation names, the format check.
- ``manifest.py``: the manifest's fields, and reading and compare-and-swap of it.
- ``appends.py``: an append as a segment, counted in the manifest.
- ``compaction.py``: segments into chunks, chunks into bigger chunks.
- ``reading.py``: loading a session and listing sessions.
- ``hooks.py``: named points where tests inject faults.
"""

from __future__ import annotations

from .backend import S3Backend
from .hooks import AFTER_SEGMENT_PUT, BEFORE_MANIFEST_SWAP, Hooks

__all__ = ["AFTER_SEGMENT_PUT", "BEFORE_MANIFEST_SWAP", "Hooks", "S3Backend"]
