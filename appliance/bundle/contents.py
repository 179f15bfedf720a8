"""`appliance bundle inspect`: what a bundle holds, read from its tar headers and `bundle.yaml`.

Called by `appliance.api.bundle_inspect`. It reads only the headers (seeking past file data) and the
small record, so it takes a moment even for a bundle of many gigabytes. It does not verify: that is
`appliance bundle verify`.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import errors
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
    if not bundle.is_file():
        raise errors.UsageError(f"bundle {bundle} does not exist", hint="pass the path of a .odhbundle file")
    try:
        with tarfile.open(bundle, "r:") as tar:
            infos = tar.getmembers()
            record_info = next((i for i in infos if i.name == archive.RECORD and i.isfile()), None)
            if record_info is None:
                raise archive.BundleDamaged(bundle, f"it holds no {archive.RECORD}")
            stream = tar.extractfile(record_info)
            assert stream is not None
            text = stream.read().decode("utf-8", errors="replace")
    except (tarfile.TarError, EOFError) as exc:
        raise archive.BundleDamaged(bundle, f"not a readable bundle archive ({exc})") from None
    record = definition.Resolved.from_yaml(text, str(bundle))
    files = [(i.name, i.size) for i in infos]
    signed = any(name == archive.SIGNATURE for name, _ in files)
    return Contents(bundle, bundle.stat().st_size, record, files, signed)
