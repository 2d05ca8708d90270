"""Cohen's and Fleiss' kappa against values worked out by hand."""

import pytest

from reviewapp.agreement import (
    cohen_kappa,
    fleiss_kappa,
    fleiss_table,
    kappa,
    kappa_strength,
    observed_agreement,
)


def test_cohen_kappa_of_two_readers_matches_the_hand_computed_value():
    # Agree on 4 of 6 items: p_o = 4/6. Each reader says yes 3 times: p_e = 0.5*0.5 + 0.5*0.5 = 0.5.
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    bob = ["yes", "yes", "no", "no", "yes", "no"]
    charlie = ["yes", "no", "no", "no", "yes", "yes"]
    assert observed_agreement(bob, charlie) == pytest.approx(4 / 6)
    assert cohen_kappa(bob, charlie) == pytest.approx(1 / 3)


def test_cohen_kappa_with_unequal_marginals():
    # 10 items. Table (bob rows x charlie columns): yes/yes 4, yes/no 2, no/yes 1, no/no 3.
    # p_o = 0.7; bob yes 0.6, charlie yes 0.5: p_e = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    bob = ["y"] * 6 + ["n"] * 4
    charlie = ["y"] * 4 + ["n"] * 2 + ["y"] * 1 + ["n"] * 3
    assert cohen_kappa(bob, charlie) == pytest.approx(0.4)


def test_perfect_agreement_is_one_and_systematic_disagreement_is_negative():
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    # p_o = 0, p_e = 0.5: kappa = -1.
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


def test_kappa_is_undefined_when_every_answer_is_the_same():
    assert cohen_kappa(["no", "no", "no"], ["no", "no", "no"]) is None
    assert fleiss_kappa([[3], [3]]) is None


def test_fleiss_kappa_of_three_readers_matches_the_hand_computed_value():
    # 4 items, 3 readers, categories (yes, no):
    #   item 1: 3/0 -> P = (9 - 3) / 6 = 1;   item 2: 2/1 -> P = (4 + 1 - 3) / 6 = 1/3
    #   item 3: 0/3 -> P = 1;                 item 4: 1/2 -> P = 1/3
    # P_bar = (1 + 1/3 + 1 + 1/3) / 4 = 2/3. p_yes = 6/12, p_no = 6/12: P_e = 0.5.
    # kappa = (2/3 - 1/2) / (1/2) = 1/3.
    table = [[3, 0], [2, 1], [0, 3], [1, 2]]
    assert fleiss_kappa(table) == pytest.approx(1 / 3)


def test_fleiss_kappa_of_the_classic_fourteen_reader_example():
    # Fleiss (1971) style table: 10 items, 14 readers, 5 categories; kappa = 0.2099.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_table_counts_answers_per_category():
    assert fleiss_table([["yes", "yes", "no"], ["no", "no", "no"]]) == [[2, 1], [0, 3]]


def test_fleiss_kappa_rejects_items_with_different_numbers_of_answers():
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 1], [1, 1]])


def test_kappa_picks_cohen_for_two_readers_and_fleiss_for_more():
    assert kappa([["y", "y"], ["n", "y"], ["n", "n"]])[0] == "cohen"
    assert kappa([["y", "y", "n"], ["n", "n", "n"]])[0] == "fleiss"


def test_kappa_needs_items():
    with pytest.raises(ValueError):
        kappa([])
    with pytest.raises(ValueError):
        cohen_kappa([], [])


def test_kappa_strength_uses_landis_and_koch_words():
    assert kappa_strength(None) == "undefined"
    assert kappa_strength(-0.1) == "poor"
    assert kappa_strength(0.1) == "slight"
    assert kappa_strength(0.5) == "moderate"
    assert kappa_strength(0.9) == "almost perfect"
