"""SentiBench metrics on hand-made cases whose scores are worked out by hand in the comments."""

from __future__ import annotations

import pytest

from compeffdist_utils.sentibench.metrics import (
    ABSENT,
    chars_to_tokens,
    macro_f1,
    normalise_label,
    occurrences,
    opener_f1,
    opinion_from_spans,
    opinion_from_strings,
    tuple_f1,
)


def test_normalise_label_case_and_spaces():
    assert normalise_label("  Not   Intimate ") == "not intimate"
    assert normalise_label("AGAINST") == "against"


def test_macro_f1_is_case_insensitive():
    gold = ["Not Intimate", "Highly Intimate", "Moderately Intimate"]
    pred = ["not intimate", "highly intimate", "moderately intimate"]
    assert macro_f1(gold, pred) == pytest.approx(1.0)


def test_macro_f1_class_missing_from_gold_and_predictions_is_not_averaged():
    # a: P=2/3 R=1 -> 0.8 ; b: P=1 R=1/2 -> 2/3 ; class c (in the label set) appears nowhere.
    assert macro_f1(["a", "a", "b", "b"], ["a", "a", "b", "a"]) == pytest.approx((0.8 + 2 / 3) / 2)


def test_macro_f1_class_predicted_but_absent_from_gold_scores_zero():
    # a: P=1 R=1/2 -> 2/3 ; b: 1 ; c: predicted once, never gold -> 0.
    assert macro_f1(["a", "a", "b", "b"], ["a", "c", "b", "b"]) == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_macro_f1_rejects_length_mismatch_and_empty():
    with pytest.raises(ValueError, match="2 gold labels but 1"):
        macro_f1(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no examples"):
        macro_f1([], [])


def test_tuple_f1_duplicates_count_once():
    gold = [[("pizza", "positive"), ("pizza", "positive")]]
    pred = [[("Pizza", "positive"), ("pizza", " positive "), ("pizza", "positive")]]
    res = tuple_f1(gold, pred)
    assert (res["precision"], res["recall"], res["f1"]) == (1.0, 1.0, 1.0)
    assert res["n_pred"] == 1 and res["n_gold"] == 1


def test_tuple_f1_partial_and_micro_over_sentences():
    gold = [[("pizza", "positive"), ("service", "negative")], [("wine", "neutral")]]
    pred = [[("pizza", "positive"), ("decor", "positive")], [("wine", "positive")]]
    res = tuple_f1(gold, pred)  # tp=1, 3 predicted, 3 gold
    assert res["precision"] == pytest.approx(1 / 3)
    assert res["recall"] == pytest.approx(1 / 3)
    assert res["f1"] == pytest.approx(1 / 3)


def test_tuple_f1_empty_predictions_and_empty_gold():
    assert tuple_f1([[("pizza", "positive")], []], [[], []])["f1"] == 0.0
    assert tuple_f1([[], []], [[("pizza", "positive")], []])["f1"] == 0.0
    assert tuple_f1([[], []], [[], []])["f1"] == 1.0  # nothing to find, nothing claimed


def test_tuple_f1_category_spelling():
    assert tuple_f1([[("FOOD#QUALITY", "positive")]], [[("food quality", "Positive")]])["f1"] == 1.0


SENT = "The staff was very friendly and the room was clean ."
# tokens:  0:The 1:staff 2:was 3:very 4:friendly 5:and 6:the 7:room 8:was 9:clean 10:.


def gold_staff():
    return opinion_from_spans(SENT, [], ["4:9"], ["14:27"], "Positive")


def test_spans_and_location_map_to_tokens():
    assert chars_to_tokens(SENT, ["4:9"]) == {1}
    assert chars_to_tokens(SENT, ["14:27"]) == {3, 4}
    assert occurrences(SENT, "very friendly") == [{3, 4}]
    assert occurrences(SENT, "the room") == [{6, 7}]  # whole tokens, exact case first
    assert occurrences(SENT, "THE ROOM") == [{6, 7}]  # then case-folded
    assert occurrences(SENT, "was") == [{2}, {8}]
    assert occurrences(SENT, "friend") == [{4}]  # substring fallback: the overlapping token
    assert occurrences(SENT, "kitchen") == []
    assert gold_staff().holder == ABSENT


def test_opener_exact_match_scores_one():
    pred = opinion_from_strings(SENT, "NULL", "staff", "very friendly", "positive")
    assert opener_f1([[gold_staff()]], [[pred]])["f1"] == pytest.approx(1.0)


def test_opener_partial_overlap_is_weighted():
    # predicted target {0,1} vs gold {1}; expression {4} vs gold {3,4}; holders both absent.
    # precision weight = (1 + 1/2 + 1) / 3 ; recall weight = (1 + 1 + 1/2) / 3
    pred = opinion_from_strings(SENT, "NULL", "The staff", "friendly", "positive")
    res = opener_f1([[gold_staff()]], [[pred]])
    assert res["precision"] == pytest.approx(2.5 / 3)
    assert res["recall"] == pytest.approx(2.5 / 3)
    assert res["f1"] == pytest.approx(2.5 / 3)


def test_opener_needs_polarity_and_every_element():
    wrong_pol = opinion_from_strings(SENT, "NULL", "staff", "very friendly", "negative")
    wrong_holder = opinion_from_strings(SENT, "The room", "staff", "very friendly", "positive")
    made_up = opinion_from_strings(SENT, "NULL", "chef", "very friendly", "positive")  # not in sentence
    for pred in (wrong_pol, wrong_holder, made_up):
        assert opener_f1([[gold_staff()]], [[pred]])["f1"] == 0.0


def test_opener_false_positive_halves_precision_and_duplicates_count_once():
    good = opinion_from_strings(SENT, "NULL", "staff", "very friendly", "positive")
    bad = opinion_from_strings(SENT, "NULL", "room", "clean", "negative")
    res = opener_f1([[gold_staff()]], [[good, good, bad]])
    assert res["n_pred"] == 2
    assert res["precision"] == pytest.approx(0.5)
    assert res["recall"] == pytest.approx(1.0)


def test_opener_repeated_phrases_take_the_nearest_occurrence():
    sent = "nice hotel , and the rooms are nice ."  # 0:nice 1:hotel 2:, 3:and 4:the 5:rooms 6:are 7:nice
    pred = opinion_from_strings(sent, "NULL", "rooms", "nice", "positive")
    assert pred.expression == {7} and pred.target == {5}
    gold = opinion_from_spans(sent, [], ["21:26"], ["31:35"], "Positive")
    assert opener_f1([[gold]], [[pred]])["f1"] == 1.0
    two = opinion_from_strings(sent, "NULL", "hotel AND rooms", "NICE", "positive")
    assert two.target == {1, 5} and two.expression == {0}


def test_opener_no_opinion_marker_and_empty_sentences():
    assert opinion_from_strings(SENT, "NULL", "NULL", "NULL", "NULL") is None
    assert opinion_from_strings(SENT, None, None, "", "") is None
    assert opener_f1([[], []], [[], []])["f1"] == 1.0
    assert opener_f1([[gold_staff()], []], [[], []])["f1"] == 0.0
