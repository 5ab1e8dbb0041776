"""Bad `eval:` input: one clear line, exit code 2, nothing written, before any compute."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_bad_input import assert_one_line

LM = "configs/tinystories_synthetic.yaml"


def run_with(invoke, tmp_path, *overrides: str, config: str = LM):
    results = tmp_path / "results"
    args = ["run", config, "--results", str(results), "--quiet"]
    small = ["data.options={stories: 60}"] if config == LM else []
    for override in [*small, *overrides]:
        args += ["--set", override]
    code, _out, err = invoke(*args)
    assert not results.exists()
    return code, err


def task_folder(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "items.jsonl").write_text('{"q": "a", "choices": ["b", "c"], "answer": 0}\n')
    (folder / "mine.yaml").write_text(
        "task: mine\ndataset_path: json\n"
        f"dataset_kwargs: {{data_files: {{test: {folder / 'items.jsonl'}}}}}\n"
        'test_split: test\noutput_type: multiple_choice\ndoc_to_text: "{{q}}"\n'
        'doc_to_choice: "{{choices}}"\ndoc_to_target: "{{answer}}"\n'
    )
    return folder


def cases(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "blank.txt").write_text(" \n\t\n")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)))
    return [
        (
            f"eval.perplexity.file={tmp_path / 'missing.txt'}",
            "missing.txt' does not exist; give a local file; fix it in the file or with --set "
            "eval.perplexity.file=",
        ),
        (
            f"eval.perplexity.file={tmp_path / 'folder'}",
            "folder' is a directory; give a file",
        ),
        (
            f"eval={{perplexity: {{file: {__file__}, context: 8, stride: 9}}}}",
            "stride 9 is larger than context 8",
        ),
        (
            f"eval.lm_eval={{tasks: [mine], include_path: {tmp_path / 'nowhere'}}}",
            "nowhere' does not exist; give a local folder of task YAML files",
        ),
        ("eval.lm_eval={tasks: [mine]}", "task 'mine' is a name: give eval.lm_eval.include_path"),
        (
            f"eval.lm_eval={{tasks: [{tmp_path / 'no.yaml'}]}}",
            "no.yaml' does not exist; give a local file",
        ),
        ("eval={every_step: true}", "eval needs eval.perplexity or eval.lm_eval"),
        (  # no context: the data's seq_len (64 in this config), checked before training
            f"eval={{perplexity: {{file: {__file__}, stride: 65}}}}",
            "eval.perplexity: stride 65 is larger than the context 64 (data.seq_len)",
        ),
        (f"eval.perplexity.file={tmp_path / 'blank.txt'}", "blank.txt' holds no text"),
        (
            f"eval.perplexity.file={tmp_path / 'binary.txt'}",
            "binary.txt' is not UTF-8 text (byte 128 of a block); give a UTF-8 text file",
        ),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_eval_settings_are_one_line(invoke, tmp_path, case):
    override, fragment = cases(tmp_path)[case]
    assert_one_line(*run_with(invoke, tmp_path, override), fragment)


def test_eval_on_an_image_classification_run_is_refused(invoke, tmp_path):
    code, err = run_with(
        invoke, tmp_path, f"eval.perplexity.file={__file__}", config="configs/digits.yaml"
    )
    assert_one_line(code, err, "eval evaluates language models; this run is a classification")


@pytest.mark.parametrize("module", ["lm_eval", "accelerate"])
def test_lm_eval_not_installed_names_the_extra(invoke, tmp_path, monkeypatch, module):
    """accelerate too: lm-eval's HFLM imports it, but an `lm-eval` install alone lacks it."""
    monkeypatch.setitem(sys.modules, module, None)  # find_spec and import both fail, as uninstalled
    folder = task_folder(tmp_path)
    code, err = run_with(
        invoke, tmp_path, f"eval.lm_eval={{tasks: [mine], include_path: {folder}}}"
    )
    assert_one_line(code, err, f"{module} not installed (eval.lm_eval needs it); pip install")


@pytest.mark.slow  # the task names are read by lm-eval itself (seconds to import)
def test_unknown_task_is_one_line_before_any_compute(invoke, tmp_path):
    folder = task_folder(tmp_path)
    code, err = run_with(
        invoke, tmp_path, f"eval.lm_eval={{tasks: [mine, theirs], include_path: {folder}}}"
    )
    assert_one_line(code, err, f"unknown task 'theirs' in {folder} (tasks found there: mine)")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        f"base: {Path(LM).resolve()}\n"
        f"set: {{eval.lm_eval: {{tasks: [theirs], include_path: {folder}}}}}\n"
    )
    code, _, err = invoke("sweep", str(sweep), "--dry-run", "--results", str(tmp_path / "r"))
    assert_one_line(code, err, "unknown task 'theirs'")
    assert not (tmp_path / "r").exists()
