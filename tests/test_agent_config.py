"""Configuration: defaults < file < environment < --set, with one-line errors."""
import pytest

from agent.config import load_config
from agent.errors import BadInput


def test_layers_override_in_order(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('[train]\nlr = 0.003\nepochs = 4\n[models]\ndevice = "cpu"\n')
    monkeypatch.setenv("SEAL_AGENT_DEVICE", "cuda:1")
    cfg = load_config(tmp_path, ["train.epochs=7", "lora.target_modules=q_proj,v_proj", "ingest.guard=false"])
    assert cfg.train.lr == 0.003 and cfg.train.epochs == 7
    assert cfg.models.device == "cuda:1"
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.ingest.guard is False


@pytest.mark.parametrize("override,message", [
    ("train.nope=1", "unknown config key"),
    ("nosection.x=1", "unknown config key"),
    ("train.epochs=many", "cannot read 'many' as int"),
    ("train.schedule=zigzag", "schedule must be one of"),
    ("justtext", "section.key=value"),
])
def test_bad_overrides_are_one_line_errors(tmp_path, override, message):
    with pytest.raises(BadInput, match=message) as e:
        load_config(tmp_path, [override])
    assert "\n" not in str(e.value)


def test_bad_config_file(tmp_path):
    (tmp_path / "config.toml").write_text("[train\nlr=")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_config(tmp_path)
