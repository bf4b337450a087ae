"""Project memories in S3: one object per memory, ``<prefix>memories/<project>/<id>.json``.

Adding a memory is one PUT and forgetting one a DELETE, so writers on many machines never
race for a shared object; loading lists the project's objects and reads them in parallel.
Nothing here is under ``<prefix>sessions/``, so session listings never see a memory.
"""

from __future__ import annotations

from ...models import Message
from ...project_memories import decode_memory, encode_memory, ordered
from .client import S3Client


class S3Memories:
    def __init__(self, client: S3Client, prefix: str) -> None:
        self.client = client
        self.root = f"{prefix}memories/"

    def key(self, project: str, memory_id: str) -> str:
        return f"{self.root}{project}/{memory_id}.json"

    def load(self, project: str) -> list[Message]:
        keys = [item["Key"] for item in self.client.listing(f"{self.root}{project}/")]
        bodies = self.client.map(self.client.get, keys)
        # An object deleted between the listing and its read was forgotten meanwhile.
        return ordered(
            decode_memory(found[0], f"{key} in bucket {self.client.bucket}")
            for key, found in zip(keys, bodies, strict=True)
            if found is not None
        )

    def projects(self) -> list[str]:
        found = self.client.listing(self.root, delimiter="/")
        return sorted(item["Prefix"][len(self.root) :].rstrip("/") for item in found)

    def add(self, project: str, memory: Message) -> None:
        self.client.put(self.key(project, memory.id), encode_memory(memory).encode())

    def delete(self, project: str, memory_id: str) -> bool:
        key = self.key(project, memory_id)
        if self.client.get(key) is None:
            return False
        self.client.remove(key)
        return True
