"""`--executor` and `--ray-address`, shared by the lab's long commands (bench knowledge, teacher train, forgetting)."""
from __future__ import annotations

from typing import Optional

import typer

EXECUTOR_HELP = "local (this process) | ray (Ray actors, each holding a loaded student); default: config run.executor."
RAY_ADDRESS_HELP = ("Ray cluster to join (e.g. auto, ray://HOST:10001); default: config run.ray_address, where "
                    "empty starts Ray on this machine. Implies --executor ray.")


def executor_option():
    return typer.Option(None, "--executor", help=EXECUTOR_HELP)


def ray_address_option():
    return typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP)


def apply_run_flags(cfg, executor: Optional[str], ray_address: Optional[str]) -> None:
    """Put the flags into ``cfg.run`` (checked like the config file's ``[run]``)."""
    from ...config import apply
    from ...errors import BadInput
    if ray_address is not None:
        apply(cfg, "run.ray_address", ray_address)
        if executor is None:
            executor = "ray"
    if executor is not None:
        apply(cfg, "run.executor", executor)
    try:
        cfg.run.__post_init__()
    except ValueError as e:
        raise BadInput(f"--executor: {e}") from None


def command_config(ctx, json_out: bool = False, device: Optional[str] = None, executor: Optional[str] = None,
                   ray_address: Optional[str] = None):
    """The configuration a lab command runs with: --json (also after the command), --device and the run flags."""
    from ...commands.common import state
    st = state(ctx)
    st.json = st.json or json_out
    cfg = st.config()
    if device:
        cfg.models.device = device
    apply_run_flags(cfg, executor, ray_address)
    return cfg
