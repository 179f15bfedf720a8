"""`appliance bundle inspect`: what a bundle holds, read from its tar headers and `bundle.yaml`.

Called by `appliance.api.bundle_inspect`. It streams through the archive once (a compressed tar has no
index to seek in; about 2 s for the default bundle) and keeps only the headers and the small record.
It does not verify: that is `appliance bundle verify`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.bundle import archive, definition


@dataclass(frozen=True)
class Contents:
    bundle: Path
    size: int
    record: definition.Resolved
    files: list[tuple[str, int]]  # (path, size) in archive order
    signed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "size": self.size,
            "signed": self.signed,
            "record": self.record.model_dump(mode="json"),
            "files": [{"path": path, "size": size} for path, size in self.files],
        }


def inspect(bundle: Path) -> Contents:
    files: list[tuple[str, int]] = []
    text: str | None = None
    for member in archive.members(bundle, lambda _: None):
        files.append((member.name, member.size))
        if member.name == archive.RECORD and text is None:
            text = member.stream.read().decode("utf-8", errors="replace")
    if text is None:
        raise archive.BundleDamaged(bundle, f"it holds no {archive.RECORD}")
    record = definition.Resolved.from_yaml(text, str(bundle))
    signed = any(name == archive.SIGNATURE for name, _ in files)
    return Contents(bundle, bundle.stat().st_size, record, files, signed)
