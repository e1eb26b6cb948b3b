"""The per-cycle invariant: a rep who receives accounts never ends above their target."""

from __future__ import annotations

from datetime import date

from simulation.invariants import BookState, InvariantViolation, check_books

DAY = date(2025, 6, 2)


def state(books: dict[str, set[str]], pool: set[str]) -> BookState:
    owners = {a: rep for rep, accounts in books.items() for a in accounts}
    owners |= {a: "pool" for a in pool}
    return BookState(owners, books, {"r1": 3, "r2": 3})


def test_a_rep_filled_to_target_is_fine_one_more_is_named() -> None:
    before = state({"r1": {"a1"}, "r2": {"b1", "b2", "b3", "b4"}}, {"p1", "p2", "p3"})
    to_target = state({"r1": {"a1", "p1", "p2"}, "r2": {"b1", "b2", "b3", "b4"}}, {"p3"})
    assert check_books(DAY, before, to_target) == []  # r2 was above target already: no route
    one_too_many = state({"r1": {"a1", "p1", "p2", "p3"}, "r2": {"b1", "b2", "b3", "b4"}}, set())
    [violation] = check_books(DAY, before, one_too_many)
    assert (violation.rule, violation.subject, violation.day) == ("book_above_target", "r1", DAY)
    assert "book 4 > target 3" in str(InvariantViolation("books", [violation]))


def test_an_over_target_rep_who_receives_anything_is_named() -> None:
    before = state({"r2": {"b1", "b2", "b3", "b4"}}, {"p1"})
    swapped_in = state({"r2": {"b1", "b2", "b3", "p1"}}, {"b4"})
    assert [v.subject for v in check_books(DAY, before, swapped_in)] == ["r2"]


def test_an_owned_account_coming_back_into_the_book_is_not_a_route() -> None:
    """a4 stays r1's (it was resting): its status changing is not a route giving it to r1."""
    books = {"r1": {"a1", "a2", "a3"}}
    before = BookState({"a1": "r1", "a2": "r1", "a3": "r1", "a4": "r1"}, books, {"r1": 3})
    after = BookState(before.owners, {"r1": {"a1", "a2", "a3", "a4"}}, {"r1": 3})
    assert check_books(DAY, before, after) == []


def test_an_owner_change_no_decision_asked_for_is_named() -> None:
    from collections import Counter

    from simulation.invariants import check_moves

    decided = {("a1", "r1", "pool"), ("a2", "pool", "r2")}
    assert check_moves(DAY, Counter({("a1", "r1", "pool"): 1}), decided) == []  # one unapplied
    [stray] = check_moves(DAY, Counter({("a3", "r1", "r2"): 1}), decided)
    assert (stray.rule, stray.subject) == ("moved_without_decision", "a3")
    [twice] = check_moves(DAY, Counter({("a2", "pool", "r2"): 2}), decided)
    assert "written 2 times" in twice.detail


def test_held_out_accounts_moved_by_a_cycle_are_named() -> None:
    from collections import Counter

    from simulation.invariants import check_held_out

    changes = Counter({("a1", "r1", "pool"): 1, ("h1", "r2", "pool"): 1})
    [moved] = check_held_out(DAY, changes, frozenset({"h1", "h2"}))
    assert (moved.rule, moved.subject, moved.day) == ("held_out_moved", "h1", DAY)
    assert check_held_out(DAY, changes, frozenset()) == []


def test_the_ledger_and_the_twin_must_agree_after_a_cycle(small_twin, tmp_path) -> None:
    """An applied write the twin does not hold (a silent drop taken for saved), and an owner
    change no applied write records, are both named; agreeing ones are not."""
    import sqlite3
    from collections import Counter

    from simulation.invariants import check_warehouse
    from simulation.twin import copy_twin

    crm = copy_twin(small_twin, tmp_path / "twin.sqlite")
    con = sqlite3.connect(crm)
    (a, owner, status), (b, other, _) = con.execute(
        'select "Id", "OwnerId", "Book_Status__c" from "Account" order by "Id" limit 2'
    ).fetchall()
    con.close()
    agreeing = {a: {"OwnerId": owner, "Book_Status__c": status}}
    assert check_warehouse(DAY, crm, agreeing, Counter({(a, "someone", owner): 1})) == []
    dropped = {a: {"OwnerId": other, "Book_Status__c": status}}
    [wrong] = check_warehouse(DAY, crm, dropped, Counter())
    assert (wrong.rule, wrong.subject) == ("warehouse_differs_from_twin", a)
    assert "OwnerId" in wrong.detail
    [unrecorded] = check_warehouse(DAY, crm, agreeing, Counter({(b, owner, other): 1}))
    assert unrecorded.subject == b and "no applied write" in unrecorded.detail
