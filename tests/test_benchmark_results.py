"""The Performance page's tables and sentences from benchmark files, against hand-built
results."""

import json
import math

import pandas as pd
import pytest

from diffuse_utils import benchmark_results

METHODS = ["naive", "first", "second", "package"]


def _steps():
    rows = []
    for task, seconds, losses in (
        ("b task", (2.0, 1.5, 1.0, 0.5), [1.0, 2.0]),
        ("a task", (9.0, 6.0, 4.0, 3.0), [3.0]),
    ):
        for k, method in enumerate(METHODS):
            shift = (
                0.001 * k
            )  # the package's losses differ from the naive ones by 0.003
            rows.append(
                dict(
                    task=task,
                    method=method,
                    seconds=seconds[k],
                    tokens=100 - 10 * k,
                    minimum_tokens=50,
                    sequence_trie_tokens=40,
                    peak_rss_increase_mb=80 / (k + 1),
                    loss=sum(losses) + shift,
                    prompt_losses=[x + shift * (i + 1) for i, x in enumerate(losses)],
                )
            )
    return pd.DataFrame(rows)


def test_step_summary_by_hand():
    summary = benchmark_results.step_summary(_steps())
    assert list(summary.index) == ["b task", "a task"]  # the order of the results
    b = summary.loc["b task"]
    assert b["speed-up"] == 4.0 and summary.loc["a task", "speed-up"] == 3.0
    assert (b["naive s"], b["version 1 s"], b["version 2 s"], b["package s"]) == (
        2,
        1.5,
        1,
        0.5,
    )
    assert b["naive tokens / minimum"] == 2.0 and b["package tokens / minimum"] == 1.4
    assert b["whole-sequence trie / minimum"] == 0.8
    assert (b["naive peak MB"], b["package peak MB"]) == (80, 20)
    assert b["|loss difference|, worst prompt"] == pytest.approx(0.006)  # 2nd prompt
    assert b["|loss difference|, step"] == pytest.approx(0.003)


def test_sampling_table_and_the_ceiling_verdict():
    cases = [
        {
            "case": "short",
            "package_tokens_per_s": 400.0,
            "matmul_bound_tokens_per_s": 500.0,
            **{
                c: 1.0
                for c in benchmark_results.SAMPLING_COLUMNS
                if c
                not in (
                    "package_tokens_per_s",
                    "matmul_bound_tokens_per_s",
                    "share of the bound",
                )
            },
        }
    ]
    table = benchmark_results.sampling_table(cases)
    assert list(table.columns) == benchmark_results.SAMPLING_COLUMNS
    assert table.loc["short", "share of the bound"] == 0.8
    verdict = benchmark_results.ceiling_verdict
    assert (
        verdict(2.5, 3.0)
        == "a step that did nothing but its matrix products could double it"
    )
    assert verdict(1.5, 3.0) == (
        "even a step that did nothing but its matrix products would not "
        "double it on short answers"
    )
    assert verdict(1.5, 1.9).endswith("on short answers or biographies")


def test_gpu_findings_in_each_case():
    assert benchmark_results.gpu_findings(None) == {
        "gpu_status": "not run yet (no GPU has been lent to this project so far)",
        "gpu_profile": "not run yet",
        "gpu_attention": "not run yet",
    }
    gpu = {"device": "H100", "projected_paper_13b_run_minutes": 12.6}
    said = benchmark_results.gpu_findings(gpu)
    assert said["gpu_status"] == (
        "run on H100; the paper's six-task 13B run would take about 13 minutes there"
    )
    assert said["gpu_profile"] == said["gpu_attention"] == "not run yet"
    gpu["tuning_profile"] = {
        "model": "13B",
        "wall_seconds_per_update": 0.5,
        "gpu_kernel_seconds_per_update": 0.4,
    }
    gpu["attention_ms_per_update"] = {
        "13B": {"package (no cuDNN)": 300.2, "cuDNN allowed": 510.7}
    }
    said = benchmark_results.gpu_findings(gpu)
    assert said["gpu_profile"].startswith(
        "profiled with torch.profiler, a 13B-shaped update took 500 ms, of which GPU "
        "kernels ran 400 ms (80%)"
    )
    assert said["gpu_attention"] == (
        "13B: 300 ms an update as the package runs it, 511 with "
        "cuDNN's attention allowed"
    )


def _run(params, seconds, commit, **extra):
    chapters = {"01_measuring_bias": seconds / 2, "07_what_it_takes": seconds / 2}
    return dict(
        params=params,
        chapters_total_seconds=seconds,
        commit=commit,
        date="d",
        chapter_seconds=chapters,
        **extra,
    )


def test_book_run_notes_pick_the_last_run_of_each_kind():
    recorded = {
        "old default": _run("notebook defaults", 6000, "a1"),
        "default": _run("params/default.yaml", 2400, "b2"),
        "ci": _run("params/ci.yaml", 300, "c3", ci_total_seconds=480),
        "stopped": _run("notebook defaults", 1200, "d4", partial=True),
        "in pieces": _run("notebook defaults", 1800, "e5", pieces=3),
    }
    notes = benchmark_results.book_run_notes(recorded)
    assert notes["default_book_when"] == "commit b2, d"
    assert notes["default_book_minutes"] == 40.0 and notes["default_book_caveat"] == ""
    assert notes["ci_minutes"] == 8.0
    assert notes["partial_note"] == (
        " A later run from scratch (commit d4, d) stopped after 2 "
        "notebooks, which took 20 minutes (01: 10, 07: 10)."
    )
    assert notes["pieces_note"] == (
        " Taken in 3 pieces (runner invocations, in book order; "
        "commit e5, d), its chapters add up to 30 minutes."
    )
    empty = benchmark_results.book_run_notes({})
    assert empty["default_book_when"] == "none" and math.isnan(empty["ci_minutes"])
    assert (
        empty["partial_note"]
        == empty["pieces_note"]
        == empty["default_book_caveat"]
        == ""
    )


def test_an_older_partial_run_is_not_called_later():
    recorded = {"stopped": _run("notebook defaults", 1200, "d4", partial=True),
                "in pieces": _run("notebook defaults", 1800, "e5", pieces=3),
                "default": _run("params/default.yaml", 2400, "b2")}
    notes = benchmark_results.book_run_notes(recorded)
    assert notes["default_book_when"] == "commit b2, d"
    assert notes["partial_note"] == notes["pieces_note"] == ""


def test_from_scratch_table_shows_the_last_run_of_each_kind():
    full = _run("params/full.yaml", 6000, "f6", pieces=2, partial=True)
    recorded = {"old default": _run("notebook defaults", 6000, "a1"),
                "default": _run("params/default.yaml", 2400, "b2"),
                "stopped": _run("params/default.yaml", 1200, "d4", partial=True),
                "old ci": _run("params/ci.yaml", 360, "c2", ci_total_seconds=600),
                "ci": _run("params/ci.yaml", 300, "c3", ci_total_seconds=480),
                "full": full}
    table = benchmark_results.from_scratch_table(recorded)
    assert list(table.index) == ["default book (b2, d)", "full profile (f6, d, 2 pieces, partial)",
                                 "CI (c3, d)"]
    assert list(table.columns) == ["01", "07", "all chapters", "whole CI run"]
    assert table.loc["default book (b2, d)"].tolist()[:3] == [20.0, 20.0, 40.0]
    assert table.loc["CI (c3, d)", "whole CI run"] == 8.0
    assert math.isnan(table.loc["default book (b2, d)", "whole CI run"])
    assert benchmark_results.from_scratch_table({}).empty


def test_chapters_side_by_side_count_their_wall_time_not_their_sum():
    recorded = {"ci": _run("params/ci.yaml", 300, "c3", ci_total_seconds=420, jobs=2,
                           chapters_wall_seconds=180)}
    table = benchmark_results.from_scratch_table(recorded)
    row = table.loc["CI (c3, d, 2 chapters at a time)"]
    assert row.tolist() == [2.5, 2.5, 3.0, 7.0]   # 150 s each; 180 s from first start to last end
    started = {"01_a": "2026-12-05T10:00:00", "02_b": "2026-12-05T10:00:30",
               "90_p": "2026-12-04T09:00:00"}   # the page's time from yesterday's build
    run = dict.fromkeys(["01_a", "02_b"], "2026-12-05T10:00:00")
    timings = {"params": "params/ci.yaml", "seconds": {"01_a": 60.0, "02_b": 60.0, "90_p": 6.0},
               "started": started, "invocation": {**run, "90_p": "2026-12-04T09:00:00"}}
    assert benchmark_results.build_minutes(timings) == (2.1, "")   # one at a time: the sum
    minutes, how = benchmark_results.build_minutes({**timings, "jobs": dict.fromkeys(run, 2)})
    assert minutes == 1.5 and how.startswith(", 2 chapters at a time")   # this run's chapters
    timings["seconds"]["03_c"], timings["started"]["03_c"] = 60.0, "2026-12-05T11:00:00"
    timings["invocation"]["03_c"] = "2026-12-05T11:00:00"   # re-run alone an hour later
    assert benchmark_results.build_minutes({**timings, "jobs": dict.fromkeys(run, 2)})[0] == 1.5
    assert benchmark_results.build_minutes({"seconds": {}, "params": "none"}) == (0, "")


def test_the_full_profile_note_names_its_chapters_and_those_it_lacks():
    default = _run("params/default.yaml", 2400, "b2")
    full = _run("params/full.yaml", 6000, "f6", pieces=2)
    full["chapter_seconds"] = {"01_measuring_bias": 600.0, "04_leave_one_out": 1800.0}
    full["chapters_total_seconds"] = 2400.0
    notes = benchmark_results.book_run_notes({"default": default, "full": full})
    assert notes["recorded_full"] == (
        "The full profile (params/full.yaml), from scratch in 2 pieces (commit f6, d): "
        "chapters 01, 04 took 40 minutes (01: 10, 04: 30); chapters 07 not yet recorded."
    )
    full["chapter_seconds"]["07_what_it_takes"] = 60.0
    assert benchmark_results.book_run_notes({"default": default, "full": full})["recorded_full"].endswith(
        "(01: 10, 04: 30, 07: 1).")
    assert benchmark_results.book_run_notes({"default": default})["recorded_full"] == (
        "The full profile (params/full.yaml) has no recorded run yet.")


def test_profile_comparison_table_and_chapter_4_sentence():
    compared = {"04_leave_one_out": {
        "default": {"passes_glue": "2", "n_samples": "40", "n_tasks": "6", "ood_wins": "5",
                    "id_wins": "6"},
        "full": {"passes_glue": "8", "n_samples": "100", "n_tasks": "6", "ood_wins": "6",
                 "id_wins": "4"},
        "labels": {"passes_glue": "six-task tuning passes", "ood_wins": "OOD beats base"},
        "params": {"default": "params/default.yaml", "full": "params/full.yaml"}}}
    table = benchmark_results.profile_comparison_table(compared)
    assert table.loc[("chapter 4", "six-task tuning passes")].tolist() == ["2", "8"]
    assert table.loc[("chapter 4", "OOD beats base")].tolist() == ["5", "6"]
    compared["04_leave_one_out"]["default"]["ratio"] = "34.769293064771674"
    compared["04_leave_one_out"]["full"]["ratio"] = "John"
    compared["04_leave_one_out"]["labels"]["ratio"] = "a ratio"
    assert benchmark_results.profile_comparison_table(compared).loc[
        ("chapter 4", "a ratio")].tolist() == ["34.769", "John"]
    assert [benchmark_results._shown(v) for v in ("16.2", "0.0361", "8.0", "0.00012", "0", "x")] == [
        "16.2", "0.036", "8", "0.00012", "0", "x"]
    assert benchmark_results.leave_one_out_comparison(compared) == (
        "with 2 passes and 40 generations a prompt (default) and 8 and 100 (full), OOD's "
        "entropy beats the base model's on 5 and 6 of 6 families, and ID's beats OOD's "
        "on 6 and 4")
    assert benchmark_results.profile_comparison_table({}) is None
    assert benchmark_results.leave_one_out_comparison({}) == (
        "chapter 4 has not been run in both profiles")


def test_llama_cpp_table_and_finding_compare_tokens_per_second():
    from diffuse_utils.benchmark_results import llama_cpp_finding, llama_cpp_table
    measured = {"precision": {"llama.cpp": "Q4_1", "package": "float32"}, "rows": [
        {"sampler": "llama.cpp, sequential (create_chat_completion)", "tokens_per_s": 100.0,
         "answers_per_s": 7.0, "tokens_per_answer": 14.0, "seconds": [1.0]},
        {"sampler": "llama.cpp, batched (100 sequences)", "tokens_per_s": 800.0,
         "answers_per_s": 56.0, "tokens_per_answer": 14.0, "seconds": [1.0]},
        {"sampler": "package (du.sample, batch 100)", "tokens_per_s": 400.0,
         "answers_per_s": 28.0, "tokens_per_answer": 14.0, "seconds": [1.0]}]}
    table = llama_cpp_table(measured)
    assert list(table.columns) == ["tokens/s", "answers/s", "tokens an answer", "weights"]
    assert list(table.index) == ["llama.cpp, sequential", "llama.cpp, batched", "package, batched"]
    assert list(table["weights"]) == ["Q4_1", "Q4_1", "float32"]
    assert llama_cpp_finding(table) == ("The package drew 4.00 times the tokens a second of llama.cpp's "
                                        "sequential chat completions and 0.50 times those of its batch API")
    assert llama_cpp_table({"skipped": "not installed"}) is None and llama_cpp_table(None) is None
    assert llama_cpp_finding(None).startswith("llama.cpp was not measured here")


def test_page_label_names_chapters_and_reference_pages():
    assert benchmark_results.page_label("04_leave_one_out") == "chapter 4"
    assert benchmark_results.page_label("90_performance") == "performance page"


def test_recorded_values_reads_a_profiles_run_and_is_empty_without_one(tmp_path):
    path = tmp_path / "profile_comparison.json"
    path.write_text(json.dumps({"07_what_it_takes": {"full": {"suite_verdict": "Yes."},
                                                     "default": {"suite_verdict": "No."}}}))
    assert benchmark_results.recorded_values("07_what_it_takes", path=path) == {
        "suite_verdict": "Yes."}
    assert benchmark_results.recorded_values("08_beyond_the_paper", path=path) == {}
    assert benchmark_results.recorded_values("07_what_it_takes", path=tmp_path / "no.json") == {}
