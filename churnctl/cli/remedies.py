"""A library remedy (``Fix``) in the running command's own words.

The library names its settings (``max_rejects``, ``encoding``); each command spells
them as its own option (``--max-rejects 100%``) or argument (``OUT_DIR``). Where a
command has no option for the setting, the remedy says what to do instead, and never
names an option of another command.
"""

from __future__ import annotations

import shlex
from typing import Any

from churnctl.errors import Fix, Step

# What to do, for a command without an option for the setting.
WITHOUT_OPTION = {
    "allow_state_mismatch": "use the state the model was trained with",
    "decimal": "convert the numbers to '.' decimals first",
    "delimiter": "convert the file to comma-delimited CSV first",
    "encoding": "convert the file to UTF-8 first",
    "format": "name the output with a .csv, .jsonl or .parquet extension",
    "jobmanager": "check the cluster's REST address (HOST:PORT)",
    "keep": "keep only columns the input has",
    "label": "name the column that holds 0 or 1",
    "logits": "export the model with a probability output",
    "max_rejects": "fix the rejected rows in the input",
    "model": "name an existing ONNX model file",
    "out": "name the output folder of a watcher",
    "output": "write to a file",
    "pipeline": "name a preset (reference, sklearn) or a TOML/JSON spec file",
    "rebind": "bind the model as exported from its training, before any binding",
    "reprocess_changed": "land the new content under a new name",
    "state": "use the state the model was trained with",
    "threshold": "use a probability from 0 to 1",
}


# The command that does a library action (``errors.Step``), as a user would type it.
COMMANDS = {
    "fit_state": "churnctl fit TRAIN.csv -o state.json",
    "bind_model": "churnctl bind --model MODEL --state STATE -o BOUND.onnx",
}


def spell_step(step: Step) -> str:
    """``refit it with `churnctl fit TRAIN.csv -o state.json` ``."""
    command = COMMANDS.get(step.action)
    return step.describe() if command is None else f"{step.what} with `{command}`"


def spell(fix: Fix, params: list[Any]) -> str:
    """``fix`` as ``pass --flag VALUE [note]``, ``name VALUE as ARG``, or what to do instead.

    ``params`` are the running command's click parameters (options and arguments).
    """
    param = next((p for p in params if p.name == fix.setting), None)
    if param is None:
        return WITHOUT_OPTION.get(fix.setting, fix.describe())
    note = "" if fix.note is None else f" {fix.note}"
    if param.param_type_name == "argument":
        name = param.metavar or param.name.upper()
        value = "" if fix.example in (None, True) else f"{fix.example} as "
        return f"name {value}{name}{note}"
    flag = max(param.opts, key=len)
    if fix.example is None or fix.example is True:
        return f"pass {flag}{note}"
    example = str(fix.example)
    shown = example if shlex.quote(example) == example else repr(example)
    return f"pass {flag} {shown}{note}"
