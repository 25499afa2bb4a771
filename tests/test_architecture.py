"""The layers of docs/architecture.md hold: the import contracts in pyproject.toml pass."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    assert f"{len(contracts)} kept, 0 broken" in out


def test_the_contracts_see_imports_made_inside_functions() -> None:
    """Heavy imports are made inside functions (so ``permgen --help`` starts fast); the
    contracts are only worth something if those count too."""
    import grimp

    graph = grimp.build_graph("permgen")
    # permgen.cli.plan_cmd imports account.sync only inside its command function
    assert graph.direct_import_exists(
        importer="permgen.cli.plan_cmd", imported="permgen.account.sync"
    )
