import math

import pytest

from student.grading import (
    Grade,
    contains,
    exact,
    extract_answer,
    f1,
    grade,
    mean_grade,
    normalize_answer,
)


def test_normalize_answer_squad():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("An apple, a day.") == "apple day"
    assert normalize_answer("  Santa Clara, California ") == "santa clara california"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Denver Broncos", "Denver Broncos"),
        ("\n\n  Paris\nMore text", "Paris"),
        ("1. Levi's Stadium\n2. Santa Clara", "Levi's Stadium"),
        ("- **Santa Clara**", "Santa Clara"),
        ("**1.** Paris", "Paris"),
        ("* \n  3) Answer: the Eiffel Tower", "the Eiffel Tower"),
        ("### Carolina Panthers", "Carolina Panthers"),
        ("3.5 million", "3.5 million"),
        ("J. K. Rowling", "J. K. Rowling"),
        ("", ""),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_contains_f1_exact_on_squad_examples():
    # Super Bowl 50 questions from SQuAD v1.1 dev
    assert contains("It was won by the Denver Broncos.", "Denver Broncos")
    assert not contains("The Carolina Panthers", "Denver Broncos")
    assert contains("Levi's Stadium in Santa Clara", ["Santa Clara, California", "Levi's Stadium"])
    assert not contains("in 1990", "1"), "gold must match whole words"
    assert not contains("anything", "")
    assert exact("the Denver Broncos", "Denver Broncos")
    assert not exact("Denver Broncos team", "Denver Broncos")
    assert f1("Denver Broncos", "Denver Broncos") == 1.0
    # pred tokens: {denver, broncos, team}; gold {denver, broncos}: P=2/3, R=1 -> F1=0.8
    assert f1("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)
    assert f1("Santa Clara", "Santa Clara, California") == pytest.approx(0.8)
    assert f1("Paris", "London") == 0.0
    assert f1("the", "a") == 1.0  # both normalise to empty (SQuAD convention)


def test_grade_uses_extracted_answer():
    g = grade("1. Denver Broncos\n2. Carolina Panthers", "Carolina Panthers")
    assert g == Grade(contains=0.0, f1=0.0, em=0.0), "only the first answer line counts"
    g = grade("**Denver Broncos**\nThey beat the Panthers.", "Denver Broncos")
    assert g == Grade(1.0, 1.0, 1.0)
    g = grade("Answer: the Denver Broncos won", "Denver Broncos")
    assert g.contains == 1.0 and g.em == 0.0 and g.f1 == pytest.approx(0.8)


def test_mean_grade():
    m = mean_grade([Grade(1.0, 1.0, 1.0), Grade(0.0, 0.5, 0.0), Grade(1.0, 0.0, 0.0)])
    assert m.contains == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(0.5)
    assert m.em == pytest.approx(1 / 3)
    assert all(math.isnan(v) for v in (mean_grade([]).contains, mean_grade([]).f1, mean_grade([]).em))
