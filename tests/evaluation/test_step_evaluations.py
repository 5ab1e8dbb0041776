"""`eval:` on a tiny GPT-Neo run over the synthetic stories: strided perplexity over a local
text file and lm-eval multiple-choice accuracy over a local task, stored per step, equal to
independent computations on the model rebuilt from the stored checkpoint; nothing downloaded."""

from __future__ import annotations

import json
import math
import shutil
import socket
import sqlite3

import numpy as np
import pandas as pd
import pytest
import torch

from prunebench.config.evaluation import EvalConfig
from prunebench.config.identity import base_id, run_id
from prunebench.config.loading import load_run_config
from prunebench.data.build import build_data
from prunebench.data.synthetic_stories import generate_stories
from prunebench.engine.single_run import run
from prunebench.engine.step_evaluation import StepEvaluator
from prunebench.errors import ConfigError
from prunebench.evaluation import suite
from prunebench.evaluation.perplexity import strided_perplexity, text_ids
from prunebench.export.pruned import load_step
from prunebench.models.build import build_model
from prunebench.store.database import Store
from prunebench.store.example_outcomes import unpack
from prunebench.store.metrics import dense_key
from prunebench.store.results import integrity_warning, load_results
from sweep_helpers import one_torch_thread
from tiny_lm_configs import STORIES_RUN

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = STORIES_RUN
CONTEXT, STRIDE = 16, 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run without eval: (computed once; each test evaluates a copy)."""
    root = tmp_path_factory.mktemp("trained") / "res"
    with one_torch_thread():
        result = run(load_run_config(None, BASE), Store(root))
    assert result.computed == 2
    return root, result


@pytest.fixture
def results(trained, tmp_path):
    copy = tmp_path / "res"
    shutil.copytree(trained[0], copy)
    return copy


def write_text(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("\n".join(generate_stories(30, seed=7)))
    return path


def write_task(tmp_path, name: str = "tiny_mcq"):
    """A multiple-choice task in lm-eval's YAML format over a local jsonl file: the first four
    words of a story, the next word and two other words of the corpus as choices."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    words = sorted({w for s in generate_stories(30, seed=7) for w in s.split() if w.isalpha()})
    items = []
    for i, story in enumerate(generate_stories(8, seed=11)):
        w = story.split()
        others = [x for x in words if x != w[4]]
        items.append({"question": " ".join(w[:4]), "choices": [others[i], w[4], others[-i - 1]],
                      "answer": 1})  # fmt: skip
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {folder / 'items.jsonl'}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n"
    )
    return folder, items


def ppl_eval(path, every_step: bool = False) -> str:
    return (
        f"eval={{perplexity: {{file: {path}, context: {CONTEXT}, stride: {STRIDE}}}, "
        f"every_step: {str(every_step).lower()}}}"
    )


def stored_model(results, rid, step=None):
    """The step's model rebuilt by export's loader, and the run's tokenizer."""
    stored = load_step(results, rid, step)
    cfg = load_run_config(None, BASE)
    return stored.model.eval(), build_data(cfg.data, torch.device("cpu")).tokenizer


def dense_model(results):
    """The stored dense model, built and loaded here."""
    cfg = load_run_config(None, BASE)
    data = build_data(cfg.data, torch.device("cpu"))
    model = build_model(cfg.model, data.info)
    tensors, _ = Store(results).load_dense(base_id(cfg))
    model.load_state_dict(tensors)
    return model.eval()


def test_strided_perplexity_of_the_final_step_is_stored_and_keeps_the_run_id(tmp_path, results):
    text = write_text(tmp_path)
    cfg = load_run_config(None, [*BASE, ppl_eval(text)])
    assert run_id(cfg) == run_id(load_run_config(None, BASE))  # eval is not the experiment
    assert run(cfg, Store(results)).computed == 0  # evaluating trains nothing
    df = load_results(results).sort_values("step")
    values = list(df["eval.story/ppl"])
    assert pd.isna(values[0])  # the final step only, by default
    model, tokenizer = stored_model(results, run_id(cfg))
    ids = text_ids(text, tokenizer)
    measured = strided_perplexity(model, ids, CONTEXT, STRIDE)
    expected = measured.ppl
    assert values[1] == pytest.approx(expected, rel=1e-6)
    assert 1.0 < expected < len(tokenizer)
    blob = load_results(results, outcomes=True).sort_values("step")["eval_outcomes.story/ppl"]
    assert blob.iloc[0] is None  # the first step has no evaluation, so no outcomes
    windows = unpack(blob.iloc[1])  # one per scoring window; their mean is the log perplexity
    assert windows.kind == "nll" and list(windows.tokens) == list(measured.window_tokens)
    assert windows.values.mean() == pytest.approx(math.log(expected), rel=1e-6)
    dense = strided_perplexity(dense_model(results), ids, CONTEXT, STRIDE).ppl
    assert list(df["dense_eval.story/ppl"]) == pytest.approx([dense, dense], rel=1e-6)
    assert dense != pytest.approx(expected)


@pytest.mark.slow  # four invocations of the driver: ~7 s
def test_evaluating_a_finished_run_trains_nothing_and_happens_once(tmp_path, trained, results):
    text = write_text(tmp_path)
    store = Store(results)
    first = trained[1]
    later = run(load_run_config(None, [*BASE, ppl_eval(text, every_step=True)]), store)
    assert later.computed == 0 and later.reused == 0
    metrics = store.step_metrics()
    dense = dense_key(base_id(load_run_config(None, BASE)))
    steps = sorted(r["step_key"] for r in first.rows)
    assert sorted(m["step_key"] for m in metrics) == sorted([*steps, dense])
    model, tokenizer = stored_model(results, first.run_id, 1)
    ids = text_ids(text, tokenizer)
    step1 = next(m for m in metrics if m["step_key"] == first.rows[0]["step_key"])
    assert step1["value"] == pytest.approx(strided_perplexity(model, ids, CONTEXT, STRIDE).ppl)
    run(load_run_config(None, [*BASE, ppl_eval(text, every_step=True)]), store)
    assert store.step_metrics() == metrics  # stored with this setting: not computed again
    text.write_text(text.read_text() + " the end")  # a changed file is evaluated anew
    run(load_run_config(None, [*BASE, ppl_eval(text)]), store)
    assert len(store.step_metrics()) == 5  # the final step's and the dense model's anew


def test_a_changed_evaluation_row_fails_its_digest(tmp_path, results):
    text = write_text(tmp_path)
    run(load_run_config(None, [*BASE, ppl_eval(text)]), Store(results))
    assert Store(results).row_check().sound["step_metrics"] == 2  # the step and the dense model
    with sqlite3.connect(results / "results.sqlite") as con:
        con.execute("UPDATE step_metrics SET value = value + 1 WHERE step_key NOT LIKE 'dense:%'")
    check = Store(results).row_check()
    assert len(check.bad_metrics) == 1 and check.problems == 1
    assert "evaluation story/ppl of step" in integrity_warning(results)
    assert load_results(results)["eval.story/ppl"].isna().all()  # a changed value: not shown


def hand_correct(model, tokenizer, items) -> list[bool]:
    """Each choice's summed log-likelihood after its question (the continuation ' CHOICE'),
    one forward pass each; the first best choice is the prediction (lm-eval's argmax)."""
    right = []
    for item in items:
        context = tokenizer(item["question"], add_special_tokens=False)["input_ids"]
        scores = []
        for choice in item["choices"]:
            whole = tokenizer(f"{item['question']} {choice}", add_special_tokens=False)
            ids = torch.tensor([whole["input_ids"]])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
            rest = ids[0, len(context) :]
            scores.append(float(logp[len(context) - 1 :].gather(1, rest[:, None]).sum()))
        right.append(max(range(len(scores)), key=lambda i: (scores[i], -i)) == item["answer"])
    return right


@pytest.mark.slow  # importing lm-eval alone takes several seconds
def test_lm_eval_accuracy_equals_a_hand_computation_offline(tmp_path, results, monkeypatch):
    text = write_text(tmp_path)
    folder, items = write_task(tmp_path)

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    evaluation = (
        f"eval={{perplexity: {{file: {text}, context: {CONTEXT}, stride: {STRIDE}}}, "
        f"lm_eval: {{tasks: [tiny_mcq], include_path: {folder}}}}}"
    )
    cfg = load_run_config(None, [*BASE, evaluation])
    assert run(cfg, Store(results)).computed == 0
    final = load_results(results, outcomes=True).sort_values("step").iloc[-1]
    model, tokenizer = stored_model(results, run_id(cfg))
    correct = hand_correct(model, tokenizer, items)
    assert final["eval.tiny_mcq/acc"] == pytest.approx(np.mean(correct))
    documents = unpack(final["eval_outcomes.tiny_mcq/acc"])  # right/wrong, document by document
    assert documents.kind == "correct" and documents.values.tolist() == correct
    expected = strided_perplexity(model, text_ids(text, tokenizer), CONTEXT, STRIDE).ppl
    assert final["eval.story/ppl"] == pytest.approx(expected, rel=1e-6)
    import os

    assert "HF_HUB_OFFLINE" not in os.environ  # put back after the evaluation


def test_a_failing_evaluation_is_a_warning_and_the_run_stays_done(tmp_path, results, capsys):
    text = write_text(tmp_path)
    cfg = load_run_config(None, [*BASE, ppl_eval(text)])
    text.unlink()  # removed after the config was read: found only when the evaluation runs
    outcome = run(cfg, Store(results))
    assert outcome.status == "done" and outcome.computed == 0
    assert Store(results).step_metrics() == []
    err = capsys.readouterr().err
    assert "manual @0.6 seed 0: its steps not evaluated (FileNotFoundError" in err
    assert "run the same command again to evaluate it" in err


def test_a_context_longer_than_the_model_is_refused_before_any_training(tmp_path):
    text = write_text(tmp_path)
    evaluation = f"eval={{perplexity: {{file: {text}, context: 1000}}}}"  # > 256 positions
    results = tmp_path / "fresh"
    with pytest.raises(ConfigError, match=r"^eval.perplexity: context 1000 is longer than the "
                       r"model's 256 positions; give eval.perplexity.context <= 256$"):  # fmt: skip
        run(load_run_config(None, [*BASE, evaluation]), Store(results))
    assert Store(results).written_at("checkpoint") == {}  # nothing pretrained or pruned


def test_the_files_of_a_setting_are_hashed_once_per_invocation(tmp_path, monkeypatch):
    text = write_text(tmp_path)
    hashed = []
    sha256_of = suite.sha256_of
    monkeypatch.setattr(suite, "sha256_of", lambda p: hashed.append(p) or sha256_of(p))
    evaluator = StepEvaluator(None, None, None, None)  # the runs of a sweep share the setting
    cfg = load_run_config(None, [*BASE, ppl_eval(text)]).eval
    first = evaluator._evaluations(cfg, 16)
    assert evaluator._evaluations(cfg, 16) == first and hashed == [text]
    assert first[0].setting["sha256"] == sha256_of(text)
    default = EvalConfig(perplexity={"file": text})  # its window follows data.seq_len
    (short,), (long,) = evaluator._evaluations(default, 16), evaluator._evaluations(default, 32)
    assert (short.setting["stride"], long.setting["stride"]) == (8, 16)
    assert hashed == [text, text, text]
