from teacher.config import ParseSettings
from teacher.parsing import clean_line, parse_completion, parse_directives, parse_probes

T = "Super Bowl 50"
P = "Super Bowl 50 was an American football game won by the Denver Broncos."

LIST_COMPLETION = """Here are some implications:

1. **Denver** won Super Bowl 50.
2) The game was played in   2016.

- * The Panthers lost the game.
• Cam Newton was the *NFL* MVP.
### Levi's Stadium hosted the game.
1. Denver won Super Bowl 50.
short
Implications:
Passage:
Super Bowl 50 was an American football game won by the Denver Broncos.
learning rate: 3e-4
epochs: 5
"""


def test_lines_numbered_bulleted_markdown():
    texts = parse_completion(LIST_COMPLETION, T, P, "implications", ParseSettings())
    assert texts == [
        f"{T}\nDenver won Super Bowl 50.",
        f"{T}\nThe game was played in 2016.",
        f"{T}\nThe Panthers lost the game.",
        f"{T}\nCam Newton was the NFL MVP.",
        f"{T}\nLevi's Stadium hosted the game.",
        f"{T}\n{P}",  # appended once (the echoed copy is a duplicate)
    ]


def test_settings_prefix_append_cap():
    s = ParseSettings(title_prefix=False, append_passage=False, max_texts=2)
    assert parse_completion(LIST_COMPLETION, T, P, "implications", s) == [
        "Denver won Super Bowl 50.", "The game was played in 2016."]
    s = ParseSettings(append_passage=False, min_chars=30)
    assert parse_completion(LIST_COMPLETION, T, P, "implications", s) == [f"{T}\nLevi's Stadium hosted the game."]


def test_no_markup_stripping_keeps_markers():
    s = ParseSettings(strip_markup=False, append_passage=False)
    texts = parse_completion("1. **Denver** won Super Bowl 50.\n- The Panthers lost.", T, P, "rewrite", s)
    assert texts == [f"{T}\n1. **Denver** won Super Bowl 50.", f"{T}\n- The Panthers lost."]


def test_clean_line():
    assert clean_line("  12) __Bold__ and `code` text ") == "Bold and code text"
    assert clean_line("Implication 3: Denver won.") == "Denver won."
    assert clean_line("1.5 million people watched.") == "1.5 million people watched."
    assert clean_line("## 2. **Heading**") == "Heading"


def test_paragraphs_and_whole():
    completion = "The Broncos won the game\nby 14 points.\n\n2. Carolina lost the game.\n"
    s = ParseSettings(split="paragraphs", append_passage=False)
    assert parse_completion(completion, T, P, "rewrite", s) == [
        f"{T}\nThe Broncos won the game by 14 points.", f"{T}\nCarolina lost the game."]
    s = ParseSettings(split="whole", append_passage=False)
    assert parse_completion(completion, T, P, "rewrite", s) == [
        f"{T}\nThe Broncos won the game\nby 14 points.\nCarolina lost the game."]


def test_self_qa_pairs():
    # the prompt ended with "Question 1: ", so the completion starts with the question itself
    completion = (
        "Who won Super Bowl 50?\nAnswer 1: The Denver Broncos.\n"
        "Question 2: Where was it played?\nAnswer 2: Levi's Stadium\nin Santa Clara.\n\n"
        "**Q:** Who was MVP?\n**A:** Von Miller\n"
        "Q: Who won Super Bowl 50?\nA: The Denver Broncos.\n"
        "lr: 1e-3\n"
        "Question 4: A question without an answer?\n"
    )
    assert parse_completion(completion, T, P, "self-qa", ParseSettings()) == [
        f"{T}\nQuestion: Who won Super Bowl 50?\nAnswer: The Denver Broncos.",
        f"{T}\nQuestion: Where was it played?\nAnswer: Levi's Stadium in Santa Clara.",
        f"{T}\nQuestion: Who was MVP?\nAnswer: Von Miller",
        f"{T}\n{P}",
    ]
    # an echoed first marker is not doubled
    assert parse_completion("Question 1: Who won?\nAnswer: Denver", T, P, "self-qa",
                            ParseSettings(append_passage=False)) == [f"{T}\nQuestion: Who won?\nAnswer: Denver"]


def test_directives():
    assert parse_directives(LIST_COMPLETION) == {"lr": 3e-4, "epochs": 5}
    assert parse_directives("lr=1e-3\nEpochs = 7") == {"lr": 1e-3, "epochs": 7}
    # clamped: lr to [1e-5, 1e-2], epochs to [1, 20]; a later line wins
    assert parse_directives("learning rate: 0.5\nepochs: 50\nlr = 1e-9") == {"lr": 1e-5, "epochs": 20}
    assert parse_directives("- **Learning rate**: 2e-3\nepochs: 2.6") == {"lr": 2e-3, "epochs": 3}
    # invalid values and prose are ignored
    assert parse_directives("epochs: 0\nlr: -1\nlr: fast\nThe learning rate: is high\nepochs: 3 or 4") == {}
    texts = parse_completion("lr = 1e-3\nepochs: 4\nDenver won the game.", T, P, "implications",
                             ParseSettings(append_passage=False))
    assert texts == [f"{T}\nDenver won the game."]


def test_parse_probes():
    completion = ('Question: Who won Super Bowl 50?\nAnswer: "Denver Broncos".\n'
                  "Q: Who lost? A: Carolina Panthers\n"
                  "Question: No answer here?\n")
    assert parse_probes(completion) == [("Who won Super Bowl 50?", "Denver Broncos"),
                                        ("Who lost?", "Carolina Panthers")]
    assert parse_probes("Who won?\nAnswer: Denver\nQuestion 2: Who lost?\nAnswer 2: Carolina",
                        prefix="Question 1: ") == [("Who won?", "Denver"), ("Who lost?", "Carolina")]
    assert parse_probes("no pairs at all") == []
    # probe answers are one line: continuation lines and echoed headers do not leak into them
    assert parse_probes("Who played?\nAnswer: Beyonce and Bruno Mars\n\nPassage:\nThe Eiffel Tower was built.\n"
                        "Question: When?\nAnswer: 1889\nbecause of the fair", prefix="Question 1: ") == [
        ("Who played?", "Beyonce and Bruno Mars"), ("When?", "1889")]


def test_junk_lines_are_not_training_texts():
    """Labels, echoed headers, a bare title and bare numbering a small teacher writes between its rewrites."""
    completion = ("Rewritten passages:\nPassage 1\nPassage:\n**Super Bowl 50**\nTitle: Super Bowl 50\n1.\n(2)\n"
                  "Passage 2: The Broncos won the game by ten points.\nRewrite #3\nVersion 4 - Denver beat Carolina.\n"
                  "Implication 5\n3) Von Miller was named the MVP.\n")
    assert parse_completion(completion, T, P, "rewrite", ParseSettings(append_passage=False, min_chars=1)) == [
        f"{T}\nThe Broncos won the game by ten points.",
        f"{T}\nDenver beat Carolina.",
        f"{T}\nVon Miller was named the MVP.",
    ]
    # a line that only starts like a label is kept whole
    assert parse_completion("Passage of the bill took two years.", T, P, "rewrite",
                            ParseSettings(append_passage=False)) == [f"{T}\nPassage of the bill took two years."]
