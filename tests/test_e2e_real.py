"""End to end on the real embedded model (SmolLM2-135M-Instruct): the pipeline teaches it a paragraph.

Slow (a minute or two on 2 cores, plus a one-time ~20 s model conversion into the shared model cache); marked `slow`, run by `make test`.
"""
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "agent" / "data" / "sample.json"


def test_ingest_teaches_the_real_model_a_paragraph(tmp_path):
    """The default pipeline: the teacher's study questions answered open-book, distilled into a fresh adapter."""
    from agent.config import load_config
    from agent.core import Agent
    from agent.ingest import Ingest

    cfg = load_config(tmp_path / "home", ["teacher.max_new_tokens=96", "train.epochs=5", "train.lr=1e-3",
                                          "answer.max_new_tokens=24"])
    with Agent(cfg) as agent:
        [out] = Ingest(agent).run([SAMPLE])
        # the student studied the passage, the teacher's questions and the sentence cues
        assert out.texts >= 1 and out.train_steps >= 5
        # absorbing lowered the student's loss on the paragraph's facts (gold answers to its questions)
        assert out.nll_after < out.nll_before - 0.2, (out.nll_before, out.nll_after)
        # ... and changed its closed-book answers
        changed = [a for a in out.answers if a["before"] != a["after"]]
        assert len(changed) >= 3, out.answers
        assert out.status == "committed"
        question = out.answers[0]["question"]
        student, base = agent.ask([question])[0], agent.ask([question], base=True)[0]
        assert student == out.answers[0]["after"] and base == out.answers[0]["before"]
        agent.rollback(out.edit_id)
        assert agent.ask([question])[0] == base
