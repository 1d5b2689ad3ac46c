"""ARC test-time-training configurations: the teacher's prompt (SEAL's tool prompt) and tolerant JSON parsing.

On ARC the teacher's self-edit is a small JSON configuration: which augmentation families generate the training
data, whether the loss covers all tokens or only the output grid, the learning rate and the epochs. The prompt
shows the task's demonstrations ("Input:"/"Output:" grids, digits separated by spaces) and asks for that JSON only.
:func:`parse_config` never raises: text that holds no usable configuration gives None (an invalid configuration).
Plain Python: no torch, no student.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

STRATEGIES = ("train_using_all_tokens", "train_using_output_tokens")
FLAGS = ("use_basic_augmentations", "use_size_augmentations", "use_chain_augmentations", "use_repeat_augmentations")
LR_RANGE = (1e-6, 1e-2)  # learning rates outside are clamped into it
EPOCHS_RANGE = (1, 50)  # epochs below 1 are refused, above 50 clamped (the step cap refuses long runs anyway)

SYSTEM_MESSAGE = "You are a helpful assistant that provide the correct output for the given task immediately."

CONFIG_PROMPT = """
You are configuring a model training pipeline by selecting from predefined tools.

You must make two decisions:

1. **Data Generation Tools** — For each of the following, choose true or false:
    - use_basic_augmentations
    - use_size_augmentations
    - use_chain_augmentations
    - use_repeat_augmentations

2. **Training Configuration** — Choose one of:
    - "train_using_all_tokens"
    - "train_using_output_tokens"

Also specify:
    - learning_rate (float)
    - num_train_epochs (integer)

### Output Format

Respond with a valid JSON object. Do not include any explanation, markdown, or extra text. Use lowercase `true`/`false` for booleans and ensure correct JSON syntax.

Example output:

{
  "data_generation": {
    "use_basic_augmentations": ...,
    "use_size_augmentations": ...,
    "use_chain_augmentations": ...,
    "use_repeat_augmentations": ...
  },
  "training": {
    "strategy": ...,
    "learning_rate": ...,
    "num_train_epochs": ...
  }
}
"""
"""SEAL's configuration prompt (few-shot/utils/prompts.py, Continual-Intelligence/SEAL), asked after the demos."""


@dataclass(frozen=True)
class ArcConfig:
    """One test-time-training configuration (SEAL's fields)."""

    use_basic_augmentations: bool = True
    use_size_augmentations: bool = False
    use_chain_augmentations: bool = False
    use_repeat_augmentations: bool = False
    strategy: str = "train_using_output_tokens"
    learning_rate: float = 1e-4
    num_train_epochs: int = 2

    def to_json(self) -> dict[str, Any]:
        """SEAL's nested layout ({"data_generation": {...}, "training": {...}})."""
        d = asdict(self)
        return {"data_generation": {k: d[k] for k in FLAGS},
                "training": {k: d[k] for k in ("strategy", "learning_rate", "num_train_epochs")}}

    def key(self) -> str:
        """A short stable id, e.g. "b1s0c0r0-out-lr0.0001-e2" (resume keys, tables)."""
        flags = "".join(f"{c}{int(getattr(self, f))}" for c, f in zip("bscr", FLAGS))
        strategy = "out" if self.strategy == "train_using_output_tokens" else "all"
        return f"{flags}-{strategy}-lr{self.learning_rate:g}-e{self.num_train_epochs}"


DEFAULT_CONFIG = ArcConfig()
"""The fixed configuration of the bench's "default configuration" row: basic augmentations, loss on the output
grid, lr 1e-4, 2 epochs."""


# ------------------------------------------------------------------ prompt
def demos_text(demos: Sequence[tuple[Sequence[Sequence[int]], Sequence[Sequence[int]]]]) -> str:
    """The demonstrations as SEAL shows them: "Input:" grid, blank line, "Output:" grid, blank line."""
    out = []
    for inp, outp in demos:
        rows_in = "".join(" ".join(map(str, row)) + "\n" for row in inp)
        rows_out = "".join(" ".join(map(str, row)) + "\n" for row in outp)
        out.append(f"Input:\n{rows_in}\nOutput:\n{rows_out}\n")
    return "".join(out)


def config_messages(demos: Sequence[tuple[Sequence[Sequence[int]], Sequence[Sequence[int]]]]) -> list[dict]:
    """Chat messages: SEAL's system message; the demonstrations, a rule, then the configuration prompt."""
    return [{"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": demos_text(demos) + "------\n\n" + CONFIG_PROMPT}]


def config_prompt(tokenizer, demos) -> str:
    """The prompt text for ``tokenizer``'s chat template (generation prompt added); plain text without one."""
    messages = config_messages(demos)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return messages[0]["content"] + "\n\n" + messages[1]["content"] + "\n"


def propose_configs(backend, tokenizer, demos_per_task: Sequence, k: int, temperature: float = 0.8,
                    max_new_tokens: int = 128, top_p: float = 1.0, seed: int = 0
                    ) -> list[list[tuple[str, Optional[ArcConfig]]]]:
    """``k`` sampled (completion, parsed configuration or None) per task, through a teacher generation backend
    (SEAL: 128 new tokens, temperature 0.8)."""
    prompts = [config_prompt(tokenizer, demos) for demos in demos_per_task]
    if not prompts or k <= 0:
        return [[] for _ in prompts]
    outs = backend.generate(prompts, k, max_new_tokens, temperature, top_p, seed)
    return [[(text, parse_config(text)) for text in row] for row in outs]


# ------------------------------------------------------------------ parsing
def first_json_object(text: str) -> Optional[dict]:
    """The first JSON object in ``text`` (code fences and prose around it are fine), else None. Python-style
    True/False/None are read as JSON's."""
    if not isinstance(text, str):
        return None
    decoder = json.JSONDecoder()
    for candidate in (text, re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null",
                                                                                                 text)))):
        for match in re.finditer(r"\{", candidate):
            try:
                obj, _ = decoder.raw_decode(candidate, match.start())
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                return obj
    return None


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off", "none", "null", ""}


def _bool(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        x = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, AttributeError):
        return None
    return x if math.isfinite(x) else None


def _strategy(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    s = value.strip().lower().replace("-", "_").replace(" ", "_")
    if s in STRATEGIES:
        return s
    if "output" in s:
        return "train_using_output_tokens"
    if "all" in s:
        return "train_using_all_tokens"
    return None


def _section(obj: dict, name: str) -> dict:
    inner = obj.get(name)
    return {**obj, **inner} if isinstance(inner, dict) else obj


def config_from_json(obj: Any) -> Optional[ArcConfig]:
    """A configuration from SEAL's nested layout (or the same keys at the top level). Unknown keys are ignored;
    a missing augmentation switch is off; a missing or unusable strategy, learning rate or epoch count, a switch
    that is not a boolean, a non-positive learning rate or fewer than 1 epoch give None. Learning rates and epochs
    out of range are clamped into :data:`LR_RANGE` / :data:`EPOCHS_RANGE`."""
    if not isinstance(obj, dict):
        return None
    data, train = _section(obj, "data_generation"), _section(obj, "training")
    flags = {}
    for name in FLAGS:
        flag = _bool(data.get(name))
        if flag is None:
            return None
        flags[name] = flag
    strategy = _strategy(train.get("strategy"))
    lr = _number(train.get("learning_rate", train.get("lr")))
    epochs = _number(train.get("num_train_epochs", train.get("epochs")))
    if strategy is None or lr is None or epochs is None or lr <= 0 or epochs < 1:
        return None
    lr = min(max(lr, LR_RANGE[0]), LR_RANGE[1])
    epochs = int(min(max(round(epochs), EPOCHS_RANGE[0]), EPOCHS_RANGE[1]))
    return ArcConfig(**flags, strategy=strategy, learning_rate=lr, num_train_epochs=epochs)


def parse_config(text: str) -> Optional[ArcConfig]:
    """The configuration in a teacher's completion (its first JSON object), or None; never raises."""
    try:
        return config_from_json(first_json_object(text))
    except Exception:  # noqa: BLE001 - malformed output is an invalid configuration, whatever it is
        return None
