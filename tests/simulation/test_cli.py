"""`books twin` and `books simulate`: what a user sees for a good and a bad call."""

from __future__ import annotations

from books_cli.main import main


def test_books_twin_generates_once_and_refuses_to_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "twin.sqlite"
    args = ["twin", "--accounts", "40", "--reps", "2", "--seed", "1", "--out", str(out)]
    assert main(args) == 0
    assert "Account: 40" in capsys.readouterr().out
    assert main(args) == 2
    assert f"{out} already exists" in capsys.readouterr().err


def test_books_simulate_without_a_twin_says_how_to_make_one(tmp_path, capsys) -> None:
    assert main(["simulate", "--twin", str(tmp_path / "none.sqlite")]) == 2
    assert "books twin --from-warehouse" in capsys.readouterr().err


def test_books_simulate_names_a_bad_behaviour_field(tmp_path, capsys) -> None:
    twin = tmp_path / "twin.sqlite"
    assert main(["twin", "--accounts", "40", "--reps", "2", "--out", str(twin)]) == 0
    bad = tmp_path / "behaviour.yml"
    bad.write_text("reps:\n  accounts_per_week: -1\n", encoding="utf-8")
    assert main(["simulate", "--twin", str(twin), "--behaviour", str(bad)]) == 2
    assert "reps.accounts_per_week" in capsys.readouterr().err


def test_arm_names_are_unique_and_never_the_labs_own_folders() -> None:
    from pathlib import Path

    from simulation.lab import arms_for

    names = [a.name for a in arms_for([Path("a/reference.yml"), Path("b/static.yml"),
                                       Path("c/books.yml"), Path("d/books.yml")])]  # fmt: skip
    assert len(set(names)) == len(names) == 5
    assert names.count("static") == 1 and "reference" not in names


def test_books_simulate_refuses_a_holdout_share_outside_0_1(capsys) -> None:
    assert main(["simulate", "--holdout", "1.5"]) == 2
    assert "--holdout must be a share between 0 and 1 (got 1.5)" in capsys.readouterr().err
