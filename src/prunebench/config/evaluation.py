"""The `eval:` section: standard language-model evaluations of a run's pruned steps, from local
files only (docs/lm-evaluation.md).

What can be checked without torch is checked here, at config load: the text file and the task
folder exist, every task is a local YAML file or a name with a folder to find it in, and
lm-eval and what it imports are installed (found, not imported). Whether a task name is defined in that folder needs
lm-eval itself and is checked before any compute (`evaluation/lm_harness.check_tasks`).
Evaluation changes what is measured of a step, never what is trained: the section is not part
of any run id or step key (config/identity.NON_IDENTITY_FIELDS), and its results are stored per
step and setting (store/metrics.py).
"""

from __future__ import annotations

import codecs
import importlib.util
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
INSTALL_HINT = "pip install 'prunebench[lm]'"
TASK_FILE_SUFFIXES = (".yaml", ".yml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# What lm-eval's Hugging Face model needs to import: accelerate is imported by `HFLM`'s module
# but declared only in lm-eval's own [hf] extra, so an `lm-eval` install alone lacks it.
LM_EVAL_MODULES = ("lm_eval", "accelerate")


def lm_eval_missing() -> list[str]:
    """The modules `eval.lm_eval` needs that cannot be imported (found on the path; nothing is
    imported, since lm-eval takes seconds to import)."""
    return [name for name in LM_EVAL_MODULES if importlib.util.find_spec(name) is None]


def lm_eval_not_installed_message(missing: list[str]) -> str:
    return f"{' and '.join(missing)} not installed (eval.lm_eval needs it); {INSTALL_HINT}"


def _existing_file(path: Path, what: str) -> Path:
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} '{path}' is not a usable path ({exc})") from None
    if not exists:
        raise ValueError(f"{what} '{path}' does not exist; give a local file")
    if not is_file:
        raise ValueError(f"{what} '{path}' is a directory; give a file")
    return path


def _utf8_text(path: Path) -> Path:
    """`path` itself, once it is known to hold UTF-8 text that is not blank (read in blocks,
    so that a large file costs no memory): else a ValueError now, not after training."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    blank = True
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                blank = blank and not decoder.decode(block).strip()
            blank = blank and not decoder.decode(b"", final=True).strip()
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"text file '{path}' is not UTF-8 text (byte {exc.start} of a block); give a UTF-8 "
            "text file"
        ) from None
    except OSError as exc:
        raise ValueError(f"text file '{path}' cannot be read ({exc.strerror or exc})") from None
    if blank:
        raise ValueError(f"text file '{path}' holds no text; give a file with the text to score")
    return path


class PerplexityEval(_Strict):
    """Strided perplexity over a raw UTF-8 text file tokenized with the run's tokenizer
    (evaluation/perplexity.py: windows of `context` tokens every `stride` tokens)."""

    file: Path
    context: Int | None = Field(None, ge=2)  # None: data.seq_len
    stride: Int | None = Field(None, ge=1)  # None: half the context

    @field_validator("file")
    @classmethod
    def _file_exists(cls, path: Path) -> Path:
        return _utf8_text(_existing_file(path, "text file"))

    @model_validator(mode="after")
    def _stride_fits(self) -> PerplexityEval:
        if self.context is not None and self.stride is not None and self.stride > self.context:
            raise ValueError(
                f"stride {self.stride} is larger than context {self.context}; "
                "give 1 <= stride <= context"
            )
        return self

    def window(self, seq_len: int) -> tuple[int, int]:
        """(context, stride): `seq_len` (the data's) and half the context unless given; a
        ValueError when the stride is longer than the context (checked at config load)."""
        context = self.context or seq_len
        stride = self.stride or max(1, context // 2)
        if stride > context:
            raise ValueError(
                f"eval.perplexity: stride {stride} is larger than the context {context} "
                "(data.seq_len); give eval.perplexity.context"
            )
        return context, stride


class LmEvalTasks(_Strict):
    """Zero-shot (or few-shot) tasks of lm-eval-harness read from local YAML files."""

    tasks: list[str] = Field(min_length=1)  # task names in include_path, or paths to task YAMLs
    include_path: Path | None = None  # a folder of task YAML files (searched recursively)
    limit: Int | None = Field(None, ge=1)  # the first N documents of each task
    num_fewshot: Int = Field(0, ge=0)
    batch_size: Int = Field(16, ge=1)

    @field_validator("include_path")
    @classmethod
    def _folder_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_dir():
            state = "is a file" if path.exists() else "does not exist"
            raise ValueError(f"'{path}' {state}; give a local folder of task YAML files")
        return path

    @field_validator("tasks")
    @classmethod
    def _task_files_exist(cls, tasks: list[str]) -> list[str]:
        for task in tasks:
            if task.endswith(TASK_FILE_SUFFIXES):
                _existing_file(Path(task), "task file")
        return tasks

    @model_validator(mode="after")
    def _findable_and_installed(self) -> LmEvalTasks:
        named = [t for t in self.tasks if not t.endswith(TASK_FILE_SUFFIXES)]
        if named and self.include_path is None:
            raise ValueError(
                f"task '{named[0]}' is a name: give eval.lm_eval.include_path (a folder of task "
                "YAML files) or the path of its .yaml (tasks are read from local files only)"
            )
        if missing := lm_eval_missing():
            raise ValueError(lm_eval_not_installed_message(missing))
        return self

    def task_files(self) -> list[Path]:
        return [Path(t) for t in self.tasks if t.endswith(TASK_FILE_SUFFIXES)]


class EvalConfig(_Strict):
    """What is evaluated on a run's final step (every step with `every_step`)."""

    perplexity: PerplexityEval | None = None
    lm_eval: LmEvalTasks | None = None
    every_step: Bool = False

    @model_validator(mode="after")
    def _something_to_evaluate(self) -> EvalConfig:
        if self.perplexity is None and self.lm_eval is None:
            raise ValueError("eval needs eval.perplexity or eval.lm_eval (or leave eval out)")
        return self
