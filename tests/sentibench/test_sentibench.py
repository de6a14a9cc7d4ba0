"""SentiBench loading, prompt layout, verbalisers, answer parsing and a small real evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from compeffdist_utils import sentibench as sb
from compeffdist_utils.core.config import SENTIBENCH_DATASETS, EvaluationParams, params_from_dict
from compeffdist_utils.evaluation import evaluate, generation, parsing, predictions, report, scoring
from compeffdist_utils.sentibench import data as sentibench_data
from compeffdist_utils.sentibench.metrics import macro_f1, opener_f1, opinion_from_spans, opinion_from_strings

TEST_SIZES = {  # the method page's table
    "sc/imdb": 1000, "sc/yelp2": 1000, "sc/sst2": 1821, "sc/twitter": 1000,
    "multifaced/irony18": 784, "multifaced/tweeteval": 1421, "multifaced/pstance": 2157,
    "multifaced/intimacy": 396, "absa/atsa_rest16": 676, "absa/acsa_rest16": 676,
    "absa/asqp_rest16": 544, "absa/opener": 499,
}  # fmt: skip


@pytest.fixture(scope="module")
def bench(sentibench_dir: Path) -> dict[str, sb.BenchDataset]:
    return {d.name: d for d in sb.load_sentibench(sentibench_dir)}


# -- loading and gold extraction -------------------------------------------------------------------------


def test_task_registry_matches_config():
    assert tuple(sb.TASKS) == SENTIBENCH_DATASETS
    assert {t.group for t in sb.TASKS.values()} == set(sb.GROUPS)


def test_all_twelve_load_with_the_paper_test_sizes(bench):
    assert {n: len(d.test) for n, d in bench.items()} == TEST_SIZES
    assert all(d.demos and d.source == "sentibench" for d in bench.values())


def test_classification_labels_are_normalised_and_in_the_label_set(bench):
    for name, ds in bench.items():
        if ds.spec.kind == "classification":
            assert {e.gold for e in ds.test + ds.demos} == set(ds.spec.labels), name
    assert bench["multifaced/intimacy"].test[0].gold == "not intimate"  # "Not Intimate" in the file
    assert bench["multifaced/pstance"].test[0].target == "Donald Trump"


def test_absa_gold_extraction(bench):
    atsa, acsa = bench["absa/atsa_rest16"].test, bench["absa/acsa_rest16"].test
    assert atsa[0].sentence == "Yum!" and atsa[0].gold == []  # its only aspect has target NULL
    assert acsa[0].gold == [{"aspect_category": "food quality", "sentiment": "positive"}]
    assert all(r["aspect_term"] != "NULL" for e in atsa for r in e.gold)
    cats = {r["aspect_category"] for e in acsa + bench["absa/acsa_rest16"].demos for r in e.gold}
    assert cats == set(sb.ACSA_CATEGORIES)
    asqp = bench["absa/asqp_rest16"].test[0]
    assert asqp.gold == [
        {"aspect_term": "service", "aspect_category": "service general", "opinion": "never served again",
         "sentiment": "negative"}
    ]  # fmt: skip
    for e in atsa:  # pairs are sets
        assert len({tuple(r.values()) for r in e.gold}) == len(e.gold)


def test_opener_gold(bench):
    ex = next(e for e in bench["absa/opener"].test if len(e.gold) == 2)
    assert {r["holder"] for r in ex.gold} == {"NULL", "we"}
    assert all(r["sentiment_polarity"] in ("positive", "negative") for r in ex.gold)
    assert bench["absa/opener"].test[0].gold == [] and bench["absa/opener"].test[0].meta["spans"] == []


def test_gold_answers_score_100_on_every_extraction_task(bench):
    """The gold rendered as an answer must parse and score perfectly (ties gold, parser and metric)."""
    for name in ("absa/atsa_rest16", "absa/acsa_rest16", "absa/asqp_rest16"):
        ds = bench[name]
        prompts = sb.build_prompts(ds, ds.test[:80], 42, 0)
        preds = [
            parsing.items_to_records(
                parsing.parse_json_array(sb.render_label(ds.spec, p.example.gold))[0], ds.spec.fields
            )[0]
            for p in prompts
        ]
        assert scoring.score_predictions(ds.spec, prompts, preds) == 1.0, name
    ds = bench["absa/opener"]
    gold = [
        [
            opinion_from_spans(e.sentence, s["holder"], s["target"], s["expression"], s["polarity"])
            for s in e.meta["spans"]
        ]
        for e in ds.test
    ]
    pred = [[opinion_from_strings(e.sentence, *r.values()) for r in e.gold] for e in ds.test]
    # strings are located at their first occurrence, so a repeated word can land elsewhere: near 1
    assert opener_f1(gold, pred)["f1"] > 0.99


def test_missing_or_incomplete_folder_names_it(tmp_path, sentibench_dir):
    with pytest.raises(sb.SentiBenchError, match=str(tmp_path / "nowhere")):
        sb.load_sentibench(tmp_path / "nowhere")
    part = tmp_path / "part"
    shutil.copytree(sentibench_dir / "sc" / "sst2", part / "sc" / "sst2")
    with pytest.raises(
        sb.SentiBenchError, match=r"incomplete; missing: sc/imdb/train.json, sc/imdb/test.json"
    ):
        sb.load_sentibench(part)
    assert [d.name for d in sb.load_sentibench(part, ["sc/sst2"])] == ["sc/sst2"]


def test_repository_clone_root_is_accepted(tmp_path, sentibench_dir):
    (tmp_path / "clone").mkdir()
    (tmp_path / "clone" / "datasets").symlink_to(sentibench_dir)
    assert sb.resolve_sentibench_dir(tmp_path / "clone") == tmp_path / "clone" / "datasets"
    assert sb.resolve_sentibench_dir("clone", root=tmp_path) == tmp_path / "clone" / "datasets"


def test_fetch_sentibench_errors_and_reuse(tmp_path, monkeypatch, sentibench_dir):
    monkeypatch.setattr(sentibench_data, "SENTIBENCH_REPO", str(tmp_path / "no-such-repo"))
    with pytest.raises(sb.SentiBenchError, match="git clone .* failed"):
        sb.fetch_sentibench(tmp_path / "dest")
    monkeypatch.setattr(sentibench_data.shutil, "which", lambda _: None)
    with pytest.raises(sb.SentiBenchError, match="git is not installed"):
        sb.fetch_sentibench(tmp_path / "dest2")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "datasets").symlink_to(sentibench_dir)
    assert sb.fetch_sentibench(tmp_path / "done") == tmp_path / "done" / "datasets"


# -- fallback ----------------------------------------------------------------------------------------------


def _holdout(run_dir: Path) -> None:
    recs = []
    for domain, labels in (
        ("imdb", ["negative", "positive"]),
        ("tweets", ["negative", "neutral", "Positive"]),
    ):
        for i in range(12):
            recs.append(
                {
                    "text_id": f"{domain}-{i}",
                    "domain": domain,
                    "text": f"{domain} text {i}",
                    "label": labels[i % len(labels)],
                }
            )
    recs.append({"text_id": "x", "domain": "imdb", "text": "no label here", "label": None})
    (run_dir / "corpus").mkdir(parents=True)
    (run_dir / "corpus" / "holdout.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")


def test_fallback_is_flagged_and_keeps_demos_apart(tmp_path):
    _holdout(tmp_path)
    b = sb.load_for_run(None, SENTIBENCH_DATASETS, shots=4, run_dir=tmp_path)
    assert b.fallback and b.note.startswith("FALLBACK") and "NOT SentiBench" in b.note
    assert b.skipped == {"no_text": 0, "no_label": 1}
    assert [d.name for d in b.datasets] == ["fallback/imdb", "fallback/tweets"]
    tweets = b.datasets[1]
    assert (
        tweets.spec.labels == ("negative", "neutral", "positive") and tweets.spec.group == sb.FALLBACK_GROUP
    )
    assert len(tweets.demos) == 4 and len(tweets.test) == 8
    assert not {e.uid for e in tweets.demos} & {e.uid for e in tweets.test}
    p = sb.build_prompts(tweets, tweets.test[:1], 42, 4)[0]
    assert p.text.count("\nLabel: ") == 4 and p.text.endswith("Label:")


def test_fallback_without_holdout_says_which_stage(tmp_path):
    with pytest.raises(Exception, match="stage 00"):
        sb.load_for_run(None, SENTIBENCH_DATASETS, shots=4, run_dir=tmp_path)


def test_absent_dir_falls_back_and_says_why_but_an_incomplete_one_is_an_error(tmp_path):
    _holdout(tmp_path)
    b = sb.load_for_run("missing/sentibench", SENTIBENCH_DATASETS, shots=4, run_dir=tmp_path, root=tmp_path)
    assert b.fallback and b.note.startswith("FALLBACK") and str(tmp_path / "missing" / "sentibench") in b.note
    (tmp_path / "half" / "sc").mkdir(parents=True)
    with pytest.raises(sb.SentiBenchError, match="incomplete"):
        sb.load_for_run("half", SENTIBENCH_DATASETS, shots=4, run_dir=tmp_path, root=tmp_path)


# -- prompts ------------------------------------------------------------------------------------------------


def _toy() -> sb.BenchDataset:
    spec = sb.TaskSpec(
        "toy", "basic", "classification", "macro_f1", "Say the polarity.", ("negative", "positive")
    )
    demos = [sb.Example(f"d{i}", f"demo {i}", ["negative", "positive"][i % 2]) for i in range(3)]
    return sb.BenchDataset(spec, [sb.Example("t0", "the test", "positive")], demos, "sentibench")


def test_prompt_layout_is_exact():
    ds = _toy()
    p = sb.build_prompts(ds, ds.test, seed=7, shots=2, protocol="kit")[0]
    d1, d2 = (next(d for d in ds.demos if d.uid == u) for u in p.demo_uids)
    assert p.text == (
        "Say the polarity.\n\n"
        f"Sentence: {d1.sentence}\nLabel: {d1.gold}\n\n"
        f"Sentence: {d2.sentence}\nLabel: {d2.gold}\n\n"
        "Sentence: the test\nLabel:"
    )
    assert p.prompt_id == "toy:t0:seed7"


def test_kit_demo_draw_is_seeded_and_independent_of_the_subset(bench):
    ds = bench["sc/sst2"]
    a = sb.build_prompts(ds, ds.test[:5], 42, 4, protocol="kit")
    b = sb.build_prompts(ds, ds.test[3:5], 42, 4, protocol="kit")
    c = sb.build_prompts(ds, ds.test[:5], 52, 4, protocol="kit")
    assert [p.text for p in a[3:]] == [p.text for p in b]
    assert [p.demo_uids for p in a] != [p.demo_uids for p in c]
    assert all(len(set(p.demo_uids)) == 4 for p in a)


def test_kit_pstance_target_in_instruction_and_demos(bench):
    ds = bench["multifaced/pstance"]
    by_uid = {d.uid: d for d in ds.demos}
    for ex in (ds.test[0], next(e for e in ds.test if e.target == "Joe Biden")):
        p = sb.build_prompts(ds, [ex], 42, 4, protocol="kit")[0]
        first = p.text.split("\n")[0]
        assert f'towards "{ex.target}"' in first and "[against, favor]" in first
        assert all(by_uid[u].target == ex.target for u in p.demo_uids)
        labels = [line[len("Label: ") :] for line in p.text.split("\n") if line.startswith("Label: ")]
        assert len(labels) == 4 and set(labels) <= {"against", "favor"}
        assert p.text.endswith(f"Sentence: {ex.sentence}\nLabel:")


def test_kit_extraction_demos_show_one_line_json(bench):
    ds = bench["absa/asqp_rest16"]
    p = sb.build_prompts(ds, ds.test[:1], 42, 4, protocol="kit")[0]
    answers = [line[len("Label: ") :] for line in p.text.split("\n") if line.startswith("Label: ")]
    assert len(answers) == 4
    assert all(isinstance(json.loads(a), list) for a in answers)


def test_test_subset_is_seeded_and_stable(bench):
    ds = bench["sc/twitter"]
    a, b = sb.test_subset(ds, 10, 42), sb.test_subset(ds, 10, 42)
    assert [e.uid for e in a] == [e.uid for e in b] and len(a) == 10
    assert [e.uid for e in a] != [e.uid for e in sb.test_subset(ds, 10, 1)]
    assert len(sb.test_subset(ds, None, 42)) == 1000 and len(sb.test_subset(ds, 5000, 42)) == 1000


# -- answer parsing (no model) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "n"),
    [
        (' [{"aspect_term": "pizza", "sentiment": "positive"}]', "ok", 1),
        ('[{"aspect_term": "pizza", "sentiment": "positive"}] and that is all', "fallback", 1),
        (
            '```json\n[{"aspect_term": "a", "sentiment": "negative"}, {"aspect_term": "b", "sentiment": "x"}]\n```',
            "fallback",
            2,
        ),
        ('{"aspect_term": "pizza", "sentiment": "positive"}', "ok", 1),
        ("[]", "ok", 0),
        ('[{"aspect_term": "pizza", "sentiment": "posi', "failed", 0),
        (
            '[\n  {"aspect_term": "a", "sentiment": "negative"},\n  {"aspect_term": "pizza", "sen',
            "repaired",
            1,
        ),
        ("positive", "failed", 0),
        ('"positive"', "failed", 0),
        ("", "failed", 0),
    ],
)
def test_parse_json_array(raw, status, n):
    items, got = parsing.parse_json_array(raw)
    assert (got, len(items)) == (status, n)


def test_items_missing_fields_are_dropped_and_counted():
    recs, bad = parsing.items_to_records(
        [
            {"aspect_term": "pizza", "sentiment": None},
            {"aspect_term": "x"},
            "text",
            {"aspect_term": "a", "sentiment": "negative", "extra": 1},
        ],
        ("aspect_term", "sentiment"),
    )
    assert recs == [
        {"aspect_term": "pizza", "sentiment": "NULL"},
        {"aspect_term": "a", "sentiment": "negative"},
    ]
    assert bad == 2


def test_cut_at_stop():
    assert generation.cut_at_stop(' [{"a": 1}]\n\nSentence: next') == ' [{"a": 1}]'
    assert generation.cut_at_stop(' [{"a": 1}]\nSentence: next') == ' [{"a": 1}]'
    assert generation.cut_at_stop(" positive") == " positive"


def test_summarise_group_means_and_overall():
    rows = [
        ("m", "sc/sst2", "basic", 42, 80.0), ("m", "sc/sst2", "basic", 52, 60.0),
        ("m", "sc/imdb", "basic", 42, 90.0), ("m", "absa/opener", "fine-grained", 42, 30.0),
        ("n", "sc/sst2", "basic", 42, 50.0), ("n", "sc/imdb", "basic", 42, 50.0), ("n", "absa/opener", "fine-grained", 42, 10.0),
    ]  # fmt: skip
    s = report.summarise(pd.DataFrame(rows, columns=evaluate.RESULT_COLUMNS))
    assert list(s.columns) == ["group", "m", "n"]
    assert s.loc["sc/sst2", "m"] == 70.0
    assert s.loc["mean: basic", "m"] == 80.0 and s.loc["mean: fine-grained", "n"] == 10.0
    assert s.loc["overall", "m"] == pytest.approx((70 + 90 + 30) / 3, abs=0.01)
    assert "mean: multifaceted" not in s.index


def test_untrained_distilled_model_is_a_counted_skip(tmp_path):
    params = params_from_dict({"evaluation": {"models": {"distilled_student": "distilled"}}})
    results, skipped = evaluate.evaluate_models(params, tmp_path, [], tmp_path / "eval", progress=False)
    assert results.empty and list(results.columns) == evaluate.RESULT_COLUMNS
    assert list(skipped) == ["distilled_student"] and "06_student_training" in skipped["distilled_student"]


# -- with the real SmolLM2 tokenizer / model ------------------------------------------------------------------


@pytest.mark.slow
def test_verbaliser_is_first_token_of_space_label(smol):
    _, tok = smol
    labels = ("not intimate", "moderately intimate", "highly intimate")
    ids = generation.label_token_ids(tok, labels, "multifaced/intimacy")
    assert ids == [tok.encode(" " + lab, add_special_tokens=False)[0] for lab in labels]
    assert [tok.decode([i]) for i in ids] == [" not", " moderately", " highly"]
    assert [tok.decode([i]) for i in generation.label_token_ids(tok, ("irony", "non-irony"))] == [
        " irony",
        " non",
    ]
    for spec in sb.TASKS.values():
        if spec.kind == "classification":
            generation.label_token_ids(tok, spec.labels, spec.name)  # distinct for every SentiBench label set
    with pytest.raises(generation.VerbaliserError, match="share a first token"):
        generation.label_token_ids(tok, ("very good", "very bad"), "toy")


@pytest.mark.slow
def test_long_prompts_are_fitted_not_crashed(smol, bench):
    _, tok = smol
    ds = bench["sc/imdb"]
    short = sorted(ds.test[:50], key=lambda e: len(tok.encode(e.sentence)))[:3]  # test reviews < 150 tokens
    assert max(len(tok.encode(e.sentence)) for e in short) < 150
    full = sb.build_prompts(ds, short, 42, 4)
    assert min(len(tok.encode(p.text)) for p in full) > 400
    for limit, dropped in ((400, False), (160, True)):
        for p in sb.build_prompts(ds, short, 42, 4, tok, limit):
            assert len(tok.encode(p.text)) <= limit
            assert p.text.startswith(sb.authors_instruction(ds.spec)) and p.text.endswith("\nLabel:")
            assert p.truncation["tokens_before"] > limit
            assert (p.truncation["demos_dropped"] > 0) == dropped
            if not dropped:  # demos shortened to a common cap, marked " ..."
                assert (
                    p.truncation["demo_cap_tokens"] >= sb.MIN_DEMO_TOKENS
                    and p.text.count(" ...\nLabel: ") >= 1
                )
    with pytest.raises(ValueError, match="raise evaluation.max_prompt_tokens"):
        sb.build_prompts(ds, ds.test[:1], 42, 4, tok, 20)


@pytest.mark.slow
def test_batched_classification_matches_one_at_a_time(smol, bench):
    import torch

    model, tok = smol
    ds = bench["sc/sst2"]
    texts = [p.text for p in sb.build_prompts(ds, ds.test[:3], 42, 2)]  # three different lengths
    assert len({len(tok.encode(t)) for t in texts}) == 3
    ids = generation.label_token_ids(tok, ds.spec.labels)
    batched, b_scores = generation.classify(model, tok, texts, ids, batch_size=3)
    single, s_scores = generation.classify(model, tok, texts, ids, batch_size=1)
    assert batched == single
    assert torch.allclose(torch.tensor(b_scores), torch.tensor(s_scores), atol=1e-3)
    with torch.inference_mode():  # the unpadded reference: plain forward, last position
        ref = model(**tok(texts[-1], return_tensors="pt")).logits[0, -1, ids]
    assert torch.allclose(ref, torch.tensor(b_scores[-1]), atol=1e-3)


@pytest.mark.slow
def test_small_real_evaluation(smol, bench, tmp_path):
    model, tok = smol
    ep = EvaluationParams(
        n_test=2, seeds=[42], shots=2, max_new_tokens=24, max_prompt_tokens=384, batch_size=3
    )
    datasets = [bench["sc/sst2"], bench["absa/atsa_rest16"]]
    df = evaluate.evaluate_model(model, tok, datasets, ep, tmp_path, "smol", progress=False)
    assert list(df.columns[:5]) == evaluate.RESULT_COLUMNS
    assert list(df["dataset"]) == ["sc/sst2", "absa/atsa_rest16"] and df["score"].between(0, 100).all()
    cls = predictions.load_predictions(tmp_path, "smol", "sc/sst2", 42)
    assert len(cls) == 2 and all(r["prediction"] in ("negative", "positive") for r in cls)
    assert df.loc[0, "score"] == pytest.approx(
        100 * macro_f1([r["gold"] for r in cls], [r["prediction"] for r in cls])
    )
    gen = predictions.load_predictions(tmp_path, "smol", "absa/atsa_rest16", 42)
    assert len(gen) == 2 and all(
        {"raw", "parse_status", "gold", "prediction", "prompt_id", "prompt"} <= set(r) for r in gen
    )
    shown = sb.build_prompts(datasets[1], sb.test_subset(datasets[1], 2, 42), 42, 2)
    assert [r["prompt"] for r in gen] == [p.text for p in shown]  # the authors' prompt, as the model saw it
    assert set(df["protocol"]) == {"authors"}
    assert df.loc[1, "parse_failures"] == sum(r["parse_status"] == "failed" for r in gen)
    assert (
        predictions.prediction_path(tmp_path, "smol", "absa/atsa_rest16", 42).name
        == "atsa_rest16__seed42.jsonl"
    )


# -- the authors' protocol, checked against the JSON file independently of the kit's renderer ---------------


def _raw(sentibench_dir: Path, name: str, split: str) -> list[dict]:
    return json.loads((sentibench_dir / name / f"{split}.json").read_text(encoding="utf-8-sig"))


def _expected_answer(name: str, rec: dict) -> str:
    """The demo answer as the protocol file's rules state it, written out here from the raw record."""
    if name == "multifaced/pstance":
        return rec["label"].lower() + "(opinion towards '" + rec["target"] + "')"
    if not name.startswith("absa/"):
        return rec["label"].lower()
    if name == "absa/atsa_rest16":  # as the released make_atsa_rest16_seq: (term, polarity, position)
        # triples made unique, sorted by the position strings of the file
        objs, seen = [], set()
        for a in sorted(rec["aspects"], key=lambda a: (a["from"], a["to"])):
            triple = (a["target"], a["polarity"], a["from"], a["to"])
            if a["target"] not in ("NULL", None) and triple not in seen:
                seen.add(triple)
                objs.append({"aspect_term": a["target"], "sentiment": a["polarity"]})
    elif name == "absa/acsa_rest16":
        objs = [
            {"aspect_category": a["category"].lower().replace("#", " "), "sentiment": a["polarity"]}
            for a in rec["aspects"]
        ]
    elif name == "absa/asqp_rest16":
        keys = (("aspect_term", "aspect"), ("aspect_category", "category"), ("opinion", "opinion"),
                ("sentiment", "sentiment"))  # fmt: skip
        objs = [{k: q[src] for k, src in keys} for q in rec["quards"]]
    else:
        objs = [
            {
                "holder": " AND ".join(o["Source"][0]) or "NULL",
                "target": " AND ".join(o["Target"][0]) or "NULL",
                "sentiment_expression": " AND ".join(o["Polar_expression"][0]),
                "sentiment_polarity": o["Polarity"].lower(),
            }
            for o in rec["opinions"]
        ] or [
            {"holder": "NULL", "target": "NULL", "sentiment_expression": "NULL", "sentiment_polarity": "NULL"}
        ]
    return json.dumps(objs, ensure_ascii=False, indent=2)


@pytest.mark.parametrize("name", SENTIBENCH_DATASETS)
def test_authors_prompt_is_the_protocol_files_layout_char_for_char(name, bench, sentibench_dir):
    proto = json.loads((sentibench_dir / "authors_protocol.json").read_text(encoding="utf-8"))
    kind = "extraction" if name.startswith("absa/") else "classification"
    section = proto[kind]
    train, test = _raw(sentibench_dir, name, "train"), _raw(sentibench_dir, name, "test")

    def several(r: dict) -> bool:
        tuples = r.get("aspects") or r.get("quards") or r.get("opinions") or []
        if name == "absa/atsa_rest16":  # one whose position strings sort otherwise than the numbers
            pos = [(a["from"], a["to"]) for a in tuples if a["target"] != "NULL"]
            return sorted(pos) != sorted(pos, key=lambda p: (int(p[0]), int(p[1])))
        return len(tuples) > 1

    rich = [i for i, r in enumerate(train) if several(r)]
    demo_idx = [0, 1, 2, rich[0] if rich else 3]  # a fixed demo list, one with several gold tuples
    query = test[0]
    instruction = section["instructions"][name]
    if name == "multifaced/pstance":
        instruction = instruction.replace("%s", query["target"])
    block = section["pstance_demo_block" if name == "multifaced/pstance" else "demo_block"]
    cue = "Label" if kind == "classification" else "Output"
    blocks = []
    for i in demo_idx:
        answer_tpl = "{label_lower}(opinion towards '{demo_target}')" if "demo_target" in block else (
            "{label_lower}" if kind == "classification" else "{label_seq}")  # fmt: skip
        assert block == "Sentence: {sentence}\\n" + cue + ": " + answer_tpl + "\\n"
        blocks.append(
            "Sentence: " + train[i]["sentence"] + "\n" + cue + ": " + _expected_answer(name, train[i]) + "\n"
        )
    assert section["query_block"] == "Sentence: {sentence}\\n" + cue + ":"
    assert section["join"] == "'\\n'.join([instruction, '', *demo_blocks, query_block])"
    expected = "\n".join([instruction, "", *blocks, "Sentence: " + query["sentence"] + "\n" + cue + ":"])

    ds = bench[name]
    demos = [ds.demos[i] for i in demo_idx]
    got = sb.renderer("authors", ds.spec, ds.test[0].target)(
        ds.test[0].sentence, [(d.sentence, d) for d in demos]
    )
    assert got == expected


def test_packaged_protocol_is_the_shared_file(sentibench_dir):
    assert sb.PROTOCOL_FILE.read_bytes() == (sentibench_dir / "authors_protocol.json").read_bytes()


def test_authors_verbalisers_are_the_kits_label_sets():
    verbalisers = sb.authors_protocol()["classification"]["verbalisers"]
    for spec in sb.TASKS.values():
        if spec.kind == "classification":
            assert sorted(verbalisers[spec.name]) == sorted(" " + lab for lab in spec.labels), spec.name


def test_authors_demos_are_one_seeded_stream_over_the_whole_pool(bench):
    import random

    ds = bench["multifaced/pstance"]
    examples = ds.test[:30]
    prompts = sb.build_prompts(ds, examples, 52, 4)
    rng = random.Random(52)
    assert [p.demo_uids for p in prompts] == [[d.uid for d in rng.sample(ds.demos, 4)] for _ in examples]
    by_uid = {d.uid: d for d in ds.demos}
    assert any(by_uid[u].target != p.example.target for p in prompts for u in p.demo_uids)  # not same-target


def test_fallback_uses_the_authors_sentiment_instruction(tmp_path):
    _holdout(tmp_path)
    b = sb.load_for_run(None, SENTIBENCH_DATASETS, shots=2, run_dir=tmp_path)
    instructions = sb.authors_protocol()["classification"]["instructions"]
    imdb, tweets = (sb.build_prompts(d, d.test[:1], 42, 2)[0].text for d in b.datasets)
    assert imdb.startswith(instructions["sc/imdb"] + "\n\n")
    assert tweets.startswith(instructions["sc/twitter"] + "\n\n")


class _Model:
    def __init__(self, context):
        self.config = type("C", (), {"max_position_embeddings": context})()


def test_prompt_limit_follows_the_model_context_unless_set():
    tok = type("T", (), {"model_max_length": int(1e30)})()
    assert sb.prompt_limit(_Model(8192), tok, EvaluationParams(), 150) == 8042
    assert sb.prompt_limit(_Model(None), tok, EvaluationParams(), 1) is None
    assert sb.prompt_limit(_Model(8192), tok, EvaluationParams(max_prompt_tokens=512), 150) == 512
