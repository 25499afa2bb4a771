"""The wheel carries everything permgen needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_the_wheel_ships_templates_schema_and_catalog(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("permgen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "permgen/spec/_templates/reader.json.j2",
        "permgen/spec/_templates/writer.json.j2",
        "permgen/spec/_templates/temporary-uploader.json.j2",
        "permgen/spec/_templates/_lib.j2",
        "permgen/spec/schema/spec-v1.json",
        "permgen/spec/schema/_compiled.py",
        "permgen/policy/catalog/actions.json",
        "permgen/py.typed",
    ):
        assert needed in names, needed
    assert not any(n.startswith("tests/") for n in names)
    assert not any(n.startswith("permgen/tools/") for n in names)  # repository tools stay out
