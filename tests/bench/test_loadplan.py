"""The pure parts of the load benchmark (bench/loadplan.py): call mix, sequences, duplicates, accounting."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from bench.loadplan import (
    LINE,
    NO_WAIT,
    PARK_LINE,
    Expected,
    Ledger,
    Observed,
    Timing,
    build_call,
    call_spec,
    exactly_once_problems,
    expected_from,
    is_duplicate,
    known_client,
    picked,
)

START = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def states(notes):
    out = []
    for note in notes:
        info = json.loads(note.body)["result"]["callInfo"]
        out.append((info["call"]["id"].rsplit("~", 1)[-1], info["state"]))
    return out


def test_answered_call_sequence_and_recording():
    spec = call_spec(0, operators=10, missed_share=0, parked_share=0)
    notes = build_call(spec, start=START, first_seq=0, duplicate_every=0, record_base="http://sb:1/")
    assert states(notes) == [
        ("1o", "trying"), ("2o", "trying"), ("2o", "showing"), ("2o", "connected"),
        ("1o", "finished"), ("2o", "finished"), ("2o", "recorded"),
    ]  # fmt: skip
    recorded = json.loads(notes[-1].body)["result"]["callInfo"]
    assert recorded["urlRecord"] == "http://sb:1/records/2026/11/26/load0000000.mp3"
    assert "tag" not in recorded["call"]
    # Times are in call order; the PBX's startTime is Moscow time without a zone.
    assert [n.at for n in notes] == sorted(n.at for n in notes)
    assert json.loads(notes[0].body)["result"]["callInfo"]["startTime"] == "2026-11-26 15:00:00"
    # Every notification of a call is a distinct body (the inbox stores by fingerprint).
    assert len({n.body for n in notes}) == len(notes)


def test_missed_call_hides_and_has_no_recording():
    spec = call_spec(0, operators=10, missed_share=1.0, parked_share=0)
    assert not spec.answered
    notes = build_call(spec, start=START, first_seq=0, duplicate_every=0, record_base="http://sb:1")
    assert states(notes) == [
        ("1o", "trying"), ("2o", "trying"), ("2o", "showing"), ("2o", "hiding"),
        ("2o", "finished"), ("1o", "finished"),
    ]  # fmt: skip


def test_without_record_base_no_recorded_is_sent():
    spec = call_spec(3, operators=10, missed_share=0, parked_share=0)
    notes = build_call(spec, start=START, first_seq=0, duplicate_every=0, timing=NO_WAIT)
    assert [n.kind for n in notes][-1] == "finished"
    assert all(n.at == 0 for n in notes)


def test_parked_call_goes_to_the_parking_line_and_rings_after_the_wait():
    spec = call_spec(0, operators=10, missed_share=0, parked_share=1.0)
    assert spec.parked
    # Even indexes of parked calls come from the operator's own known client.
    assert spec.client == known_client(0)
    assert call_spec(1, operators=10, missed_share=0, parked_share=1.0).client == "+79210000001"
    notes = build_call(spec, start=START, first_seq=0, duplicate_every=0, timing=Timing(park_wait=0.7))
    line = json.loads(notes[0].body)["result"]["callInfo"]
    assert line["callee"]["id"] == PARK_LINE
    assert notes[1].at == 0.7
    plain = call_spec(0, operators=10, missed_share=0, parked_share=0)
    first = build_call(plain, start=START, first_seq=0, duplicate_every=0)[0]
    assert json.loads(first.body)["result"]["callInfo"]["callee"]["id"] == LINE


def test_duplicate_schedule_is_every_nth_across_calls():
    assert [s for s in range(30) if is_duplicate(s, 10)] == [9, 19, 29]
    assert not any(is_duplicate(s, 0) for s in range(30))
    seq, flagged = 0, []
    for index in range(5):
        notes = build_call(
            call_spec(index, operators=3, missed_share=0.5, parked_share=0),
            start=START, first_seq=seq, duplicate_every=4,
        )  # fmt: skip
        assert [n.seq for n in notes] == list(range(seq, seq + len(notes)))
        flagged += [n.seq for n in notes if n.duplicate]
        seq += len(notes)
    assert flagged == [s for s in range(seq) if (s + 1) % 4 == 0]


def test_shares_are_spread_evenly_and_independently():
    n = 1000
    missed = [i for i in range(n) if picked(i, 0.2, "missed")]
    parked = [i for i in range(n) if picked(i, 0.1, "parked")]
    assert abs(len(missed) - 200) <= 2
    assert abs(len(parked) - 100) <= 2
    both = set(missed) & set(parked)
    assert 10 <= len(both) <= 30  # about 0.2 x 0.1 x 1000: neither choice implies the other
    assert max(b - a for a, b in itertools.pairwise(missed)) <= 10  # no long gaps
    assert not picked(5, 0, "missed")
    assert picked(5, 1, "parked")


def test_ledger_counts_distinct_copies_and_errors():
    spec = call_spec(0, operators=1, missed_share=0, parked_share=0)
    notes = build_call(spec, start=START, first_seq=0, duplicate_every=0, record_base="http://sb")
    ledger = Ledger()
    for note in notes:
        ledger.answer(note, copy=False, status=200, duplicate=False)
    ledger.answer(notes[0], copy=True, status=200, duplicate=True)
    ledger.answer(notes[1], copy=True, status=200, duplicate=False)  # a copy stored twice: not recognized
    assert ledger.distinct == 7
    assert ledger.count(acknowledged=True, kind="recorded") == 1
    assert (ledger.copies, ledger.copies_recognized) == (2, 1)
    assert ledger.unacknowledged == 0
    assert ledger.calls_acknowledged() == 1


def test_an_unanswered_notification_stays_unanswered_until_a_copy_is_acknowledged():
    spec = call_spec(0, operators=1, missed_share=0, parked_share=0)
    first, second = build_call(spec, start=START, first_seq=0, duplicate_every=0)[:2]
    ledger = Ledger()
    ledger.answer(first, copy=False, status=503, duplicate=None)
    ledger.answer(second, copy=False, status=0, duplicate=None)
    assert (ledger.distinct, ledger.unacknowledged) == (0, 2)
    assert ledger.errors == {"notify HTTP 503": 1, "notify no answer": 1}
    assert ledger.calls_acknowledged() == 0
    # Its copy gets a 200 and is not called a duplicate (it is the one that stored it): not a failure to
    # recognize, and the notification now counts as acknowledged.
    ledger.answer(first, copy=True, status=200, duplicate=False)
    assert (ledger.distinct, ledger.unacknowledged) == (1, 1)
    assert (ledger.copies, ledger.copies_recognized) == (0, 0)
    assert ledger.fingerprints(acknowledged=True) == [first.fingerprint]
    assert ledger.calls_acknowledged() == 1


def test_a_notes_fingerprint_is_the_inboxs():
    from integrations.mtt.notifications import parse_body

    note = build_call(call_spec(0, operators=1, missed_share=0, parked_share=0), start=START, first_seq=0,
                      duplicate_every=0)[0]  # fmt: skip
    assert note.fingerprint == parse_body(note.body).fingerprint
    assert note.call == call_spec(0, operators=1, missed_share=0, parked_share=0).base


def observed(**changes):
    base = {"stored": 100, "applied": 100, "call_events": 100, "calls": 15, "recordings": 12,
            "recordings_stored": 12, "record_downloads": 12, "copies_recognized": 10, "decisions": 3}  # fmt: skip
    return Observed(**{**base, **changes})


EXACT = Expected(notifications=(100, 100), calls=(15, 15), recordings=(12, 12), copies=10, parked=(3, 3))


def test_exactly_once_holds_when_every_count_matches():
    assert exactly_once_problems(EXACT, observed()) == []
    # A retried download is not a second copy: it is reported, not a failure.
    assert exactly_once_problems(EXACT, observed(record_downloads=13)) == []


def test_exactly_once_names_each_broken_count():
    problems = exactly_once_problems(
        EXACT, observed(stored=101, applied=101, call_events=99, calls=16, copies_recognized=9,
                        recordings_stored=11)
    )  # fmt: skip
    assert problems == [
        "notifications stored: expected 100, found 101",
        "call events (one per notification): expected 101, found 99",
        "calls: expected 15, found 16",
        "duplicates recognized: expected 10, found 9",
        "recordings stored (all): expected 12, found 11",
    ]
    assert exactly_once_problems(EXACT, observed(applied=98, decisions=2)) == [
        "notifications applied (all stored): expected 100, found 98",
        "routing decisions: expected 3, found 2",
    ]


def test_unanswered_notifications_may_be_stored_once_or_not_at_all():
    expected = Expected(
        notifications=(90, 100), calls=(14, 15), recordings=(11, 12), copies=10, parked=(2, 3)
    )
    assert (
        exactly_once_problems(expected, observed(stored=95, applied=95, call_events=95, unanswered_stored=5))
        == []
    )
    assert exactly_once_problems(expected, observed(stored=90, applied=90, call_events=90, calls=14)) == []
    assert exactly_once_problems(expected, observed(stored=101, applied=101, call_events=101)) == [
        "notifications stored: expected 90..100, found 101"
    ]
    # Acknowledged yet missing is lost, whatever the totals say.
    assert exactly_once_problems(expected, observed(acknowledged_missing=1)) == [
        "acknowledged notifications not stored: 1"
    ]


def test_expected_counts_come_from_acknowledged_and_sent():
    spec = call_spec(0, operators=1, missed_share=0, parked_share=1.0)
    notes = build_call(spec, start=START, first_seq=0, duplicate_every=0, record_base="http://sb")
    ledger = Ledger(calls=2)
    for note in notes[:-1]:
        ledger.answer(note, copy=False, status=200, duplicate=False, parked=note.kind == "line-trying")
    ledger.answer(notes[-1], copy=False, status=0, duplicate=None)  # the recorded one: no answer
    sandbox = [{"state": "trying", "status": 200}, {"state": "recorded", "status": 200},
               {"state": "finished", "status": 500}]  # fmt: skip
    expected = expected_from(ledger, sandbox=sandbox, placed=1)
    assert expected.notifications == (len(notes) - 1 + 2, len(notes) + 3)
    assert expected.calls == (1 + 1, 2 + 1)
    assert expected.recordings == (0 + 1, 1 + 1)
    assert expected.parked == (1, 1)
