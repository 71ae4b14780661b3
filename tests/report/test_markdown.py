"""gate-report.md from hand-made reports: every family pass/fail/skip, absent families, no invented numbers."""

from __future__ import annotations

import re

from vnet_accept.report.markdown import cell, render_markdown, short_value
from vnet_accept.report.modelzoo import modelzoo_statuses
from vnet_accept.report.notjudged import not_judged
from vnet_accept.report.publish import absent_families


def _render(report, figures=None):
    criteria = report["criteria"]
    return render_markdown(report, modelzoo_statuses(criteria), not_judged(criteria), figures or {},
                           absent_families(report))


def _row(md: str, start: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(start))


def _no_placeholders(md: str) -> None:
    assert not re.search(r"\bNone\b|\bnan\b|\binf\b", md), [ln for ln in md.splitlines()
                                                           if re.search(r"\bNone\b|\bnan\b", ln)]


def test_full_report_tables(full_report):
    md = _render(full_report, {"per_volume_error": {"file": "per_volume_error.png"},
                               "fps_per_batch": {"reason": "no throughput"}})
    _no_placeholders(md)
    assert "**Verdict: FAIL**" in md and "Exit status 1." in md
    assert "Why it failed:" in md and "`accuracy.error_rate.om_bs16` (fail)" in md and "1.245 pp > 1.0 pp" in md
    # Accuracy: the three views, CI, counts, verdicts; the port's figures as a labelled reference row.
    om1 = _row(md, "| `om_bs1` |")
    for text in ("0.5646 %", "2,479,051 / 439,091,200", "+0.2096", "+59.0 %", "99.4354 %", "0.5146 – 0.6146 %",
                 "1072 / 134", "**PASS**"):
        assert text in om1, (text, om1)
    assert "**FAIL**: \\|Δ\\| 1.245 pp > 1.0 pp" in _row(md, "| `om_bs16` |")  # pipes escaped in cells
    assert "not judged [2]: seeded stand-in weights" in _row(md, "| `onnxrt` |")
    assert "49.9000 %" in _row(md, "| `onnxrt` |")  # measured, shown, but not judged
    assert _row(md, "| reference port, Ascend 310").count("0.5646 %") == 1
    assert "![Per-volume error rates](per_volume_error.png)" in md
    assert "No figure \"Card fps per batch size against the T4 thresholds\": no throughput" in md
    # Performance: per chip with basis, card, T4 with its basis, ratio, in batch-size order.
    rows = [ln for ln in md.splitlines() if re.match(r"\| bs\d+ \|", ln)]
    assert [r.split("|")[1].strip() for r in rows] == ["bs1", "bs4", "bs8", "bs16", "bs32"]
    assert rows[0].startswith("| bs1 | 6.105 (mean) | 4 | 24.42 | 10.319 (median) | 2.37× | **PASS**")
    assert "**FAIL**" in rows[1] and "10.951 (mean)" in rows[1]
    assert "`PerfStatus:POK`" in md and "BENCHMARK" in md
    # Parity and invariance: measured, flips, threshold, BN mode and basis.
    parity = _row(md, "| `parity.onnxrt_vs_torch.running.bs1_64x80x80` |")
    assert "| running | 1.9e-06 | 0 / 409,600 | max\\|Δ\\| <= 0.0001" in parity and "fp32" in parity
    assert _row(md, "| onnxrt | running | bs16 |").split("|")[4].strip() == "0"
    assert "| torch | bs4 | 0.085 | 177 / 409,600 |" in md
    # Other criteria: dicts and big integers readable.
    assert "45,603,934 parameters" in md and "opset=11" in md
    # modelzoo and what was not judged.
    assert "FuncStatus:OK\nPrecisionStatus:POK\nPerfStatus:POK" in md
    assert "### Missing: an Ascend NPU" in md and "atc not found on PATH" in md
    assert "### Missing: the trained checkpoint" in md and "How to provide it: pass --weights" in md
    assert "| allowed \\|error − reference\\|, percentage points (`--tolerance-pp`) | `1.0` |" in md
    assert "| CANN (ATC) | 8.0.RC1 |" in md


def test_absent_families_say_not_run(build):
    report = build.report_of(build.functional())
    md = _render(report)
    _no_placeholders(md)
    assert "not run: no error rate of the port in this run" in _row(md, "| (none) |")
    assert "not run: no throughput criterion in this run" in md
    assert "- accuracy (error rate of the OM/ONNX/PyTorch against 0.355 %): no criterion ran" in md
    assert "- performance (card fps against the T4): no criterion ran" in md
    assert "`FuncStatus:NOK` (not judged)" in md and "**no** — NOK for want of evidence" in md
    assert "seeded stand-in weights (no `--weights`" in md
    assert "Written from a plain `pytest --gate-report` run" in md  # no "complete" key


def test_skipped_family_without_measurements(build):
    report = build.report_of([build.accuracy("om_bs1", "skip", None, reason="no --npu-results DIR"),
                              build.criterion("perf.throughput.bs1", "skip", reason="no --npu-results DIR")])
    md = _render(report)
    _no_placeholders(md)
    assert _row(md, "| `om_bs1` |") == ("| `om_bs1` | — | — | — | — | — | — | — | \\|error − 0.355\\| ≤ 1.0 pp | "
                                       "not judged [1]: no --npu-results DIR | om_bs1, fp16 |")
    assert _row(md, "| bs1 |") == ("| bs1 | — | — | — | 10.319 (median, the reference port's published table) | — | "
                                   "not judged [1]: no --npu-results DIR | — |")
    assert "Every criterion of this run was judged." not in md
    # The reason is written out once, numbered as the cells refer to it.
    assert md.count("no --npu-results DIR (") == 1 and "- [1] no --npu-results DIR (`accuracy.error_rate" in md


def test_a_long_skip_reason_is_written_once_and_cells_refer_to_it(build):
    long = ("no --npu-results DIR and the OM cannot run here: atc not on PATH; no NPU inference tool (ais_bench not "
            "importable); SoC unknown. Install CANN, or pass --npu-results DIR")
    report = build.report_of([build.accuracy(f"om_bs{bs}", "skip", None, reason=long) for bs in (1, 4, 8, 16, 32)])
    md = _render(report)
    assert md.count(long) == 1
    rows = [_row(md, f"| `om_bs{bs}` |") for bs in (1, 4, 8, 16, 32)]
    assert all("not judged [1]: no --npu-results DIR and the OM cannot run here |" in r for r in rows)
    assert len(set(rows)) == 5  # every row says which batch size it is


def test_incomplete_banner(build):
    report = build.report_of(build.functional(), complete=False,
                             gate={"exit_code": 2, "explanation": "the run was interrupted (KeyboardInterrupt)"})
    md = _render(report)
    assert md.startswith("# ") and "> **INCOMPLETE — not a gate result.** the run was interrupted" in md


def test_cells_and_values():
    assert cell("a|b\nc") == "a\\|b c" and cell(None) == "—" and cell("") == "—"
    assert short_value(45_603_934) == "45,603,934"
    assert short_value({"sha": "ab" * 32, "ok": True}) == "sha=abababababab…; ok=True"
    assert short_value("x" * 300).endswith("…") and len(short_value("x" * 300)) == 160


def test_no_interval_for_too_few_volumes(build):
    """Two volumes give no bootstrap interval (the "interval" would be the two per-volume rates): the cell says why,
    whether the report recorded none or, written before the minimum existed, one."""
    old, new = build.accuracy("onnxrt", "pass", 0.46), build.accuracy("torch-cpu", "pass", 0.46)
    for c, ci in ((old, [0.40, 0.52]), (new, None)):
        c["details"].update(volumes=2, tiles=16, ci95_pct=ci)
    md = _render(build.report_of([old, new]))
    for source in ("onnxrt", "torch-cpu"):
        row = _row(md, f"| `{source}` |")
        assert "| — (2 volumes: too few for an interval, which needs 10) | 16 / 2 |" in row, row
    assert "0.4000 – 0.5200 %" not in md


def test_the_selftest_model_is_shown_against_its_own_threshold(build):
    """The self-test's model is judged by its own ceiling (<= 2.0 %): its row shows that threshold, and no view
    against the published 0.355 % (Δ, relative change, point accuracy) sits next to its verdict."""
    selftest = build.accuracy("selftest_model", "pass", 0.464)
    selftest["threshold"], selftest["details"]["subject"] = "<= 2.0 %", "selftest"
    md = _render(build.report_of([build.accuracy("om_bs1", "pass", 0.5646), selftest]))
    port_table = md.split("| source | error rate |")[1].split("\n\n")[0]
    assert "selftest_model" not in port_table and "| |error − 0.355| ≤ 1.0 pp |" in cell_free(port_table)
    row = _row(md, "| `selftest_model` |")
    assert "| <= 2.0 % | **PASS** |" in row, row
    assert "+0.1090" not in md and "+30.7 %" not in md and "99.5360 %" not in md  # the views against 0.355 %


def test_the_published_numbers_say_where_they_come_from(build):
    md = _render(build.report_of([build.accuracy("om_bs1", "pass", 0.5646)]))
    assert ("0.355 % is upstream VNet's published error rate (the mattmacy/vnet.pytorch README: 0.355 % error, "
            "Dice 0.9825).") in md
    assert _row(md, "| reference port, Ascend 310").endswith(
        "| reference | the reference port's published result on an Ascend 310, the same at bs1 and at bs16 |")
    report = build.report_of([build.accuracy("om_bs1", "pass", 0.5646)])
    report["settings"]["reference_error"] = 0.5
    assert "0.5 % was given with `--reference-error` (0.355 % is upstream VNet's" in _render(report)


def cell_free(text: str) -> str:
    """Table text with Markdown's escaped pipes unescaped, to match cell contents."""
    return text.replace("\\|", "|")


def test_the_t4_thresholds_in_force_show_when_throughput_is_not_judged(build):
    skipped = [build.criterion(f"perf.throughput.bs{bs}", "skip", reason="no --npu-results DIR") for bs in (1, 16, 64)]
    tier = build.criterion("perf.tier", "skip", reason="no --npu-results DIR")
    report = build.report_of([*skipped, tier])
    md = _render(report)
    assert "10.319 (median, the reference port's published table)" in _row(md, "| bs1 |")
    assert "10.157 (mean, the reference port's published table)" in _row(md, "| bs16 |")
    assert _row(md, "| bs64 |").startswith("| bs64 | — | — | — | — |")  # no T4 figure at bs64: none invented
    assert ("T4 thresholds: the reference port's published T4 table (NVIDIA T4, TensorRT 7.2.3.4, fp16); T4 fps = "
            "1000·bs / GPU-compute time, its median at bs1 and its mean at bs4, bs8, bs16, bs32") in md
    # The tier line reads as a sentence.
    assert "Tier criterion `perf.tier`: not judged [1] (no --npu-results DIR)." in md
    # Thresholds from --t4-logs that no criterion read are not replaced by the table's.
    report["settings"]["t4_logs"] = "t4_bs1.log"
    md = _render(report)
    assert _row(md, "| bs1 |").startswith("| bs1 | — | — | — | — |") and "from `--t4-logs` (t4_bs1.log)" in md


def test_a_judged_tier_reads_as_a_sentence(full_report, build):
    full_report["criteria"].append(build.criterion("perf.tier", "pass", "Benchmark"))
    assert "Tier criterion `perf.tier`: tier Benchmark, **PASS**." in _render(full_report)


def test_batch_invariance_says_which_samples_are_compared_and_why_the_sizes(build):
    """bs16 compares only its first 8 samples (8 × 16×32×32 = 131,072 voxels): the batch cell says so, and the
    intro names each BN mode's reduced size and why it differs."""
    def invariance(cid, samples, spatial):
        details = build.comparison(0.0, 1e-5, voxels=samples * spatial[0] * spatial[1] * spatial[2])
        details["comparison"]["shape"] = [samples, *spatial, 2]
        mode = "batch" if cid.startswith("batch_dependence") else cid.split(".")[2]
        return build.criterion(cid, "pass", 0.0, details=details, description=f"torch, bn_mode={mode}: …")

    md = _render(build.report_of([invariance("batch_invariance.torch.instance.bs16", 8, (16, 32, 32)),
                                  invariance("batch_invariance.torch.instance.bs4", 4, (16, 32, 32)),
                                  invariance("batch_invariance.torch.running.bs16", 8, (16, 16, 16)),
                                  invariance("batch_dependence_detected.torch.bs32", 8, (16, 16, 32))]))
    assert "each sample's output alone vs inside a batch of N" not in md
    assert _row(md, "| torch | instance | bs16 (first 8 compared) | 0 | 0 / 131,072 |")
    assert _row(md, "| torch | instance | bs4 | 0 | 0 / 65,536 |")
    assert _row(md, "| torch | bs32 (first 8 compared) |")
    intro = _row(md, "Batch invariance (BN modes that promise it)")
    for text in ("batch 16×16×32 (a sample alone needs more than one value per channel at the bottleneck",
                 "instance 16×32×32 (each sample is normalised over its own bottleneck values",
                 "running 16×16×16 (stored statistics"):
        assert text in intro, (text, intro)


def test_settings_labels_are_whole_descriptions(build):
    """Labels cut from an option's help end where its details or choices begin, never inside a parenthesis or on
    one of the choices; a value the run resolved (``--backend auto``) says what it chose."""
    from vnet_accept.options import OPTIONS
    from vnet_accept.report.markdown import help_label

    chain = build.accuracy("torch-cpu", "skip", 91.3, reason="seeded stand-in weights")
    chain["details"]["throughput"] = {"backend": "torch-cpu"}
    report = build.report_of([chain])
    report["settings"].update(backend="auto", npu_tool="auto", perf_statistic="port", om_max_flip_fraction=0.001)
    md = _render(report)
    assert "| inference backend of the accuracy chain (`--backend`) | `auto` (chose torch-cpu) |" in md
    assert "| NPU inference tool (`--npu-tool`) | `auto` |" in md
    assert ("| largest fraction of voxels whose label may differ between the OM (ATC force_fp16) and ONNX Runtime "
            "(`--om-max-flip-fraction`) | `0.001` |") in md
    assert ("| latency statistic behind every fps (`--perf-statistic`) | `port` (as the port: the NPU tools' "
            "mean-based figures; T4 from the median at bs1 and the mean elsewhere) |") in md
    for option in OPTIONS:
        label = help_label(option.help)
        assert option.help.startswith(label) and label.count("(") == label.count(")"), (option.flag, label)
        assert ": " not in re.sub(r"\([^()]*\)", "", label), (option.flag, label)  # no choice named as the setting


def test_provenance_says_what_the_t4_figures_were_measured_with():
    """From the details the throughput judgement records (the published table here: a T4, TensorRT 7.2.3.4)."""
    from vnet_accept.perf.rules import judge_batch_size, reference_t4_thresholds
    from vnet_accept.report.markdown import provenance_section

    criteria = [{"id": f"perf.throughput.bs{bs}", "verdict": "skip",
                 "details": judge_batch_size(bs, None, reference_t4_thresholds()[bs], 4).criterion_details()}
                for bs in (1, 16)]
    rows = "\n".join(provenance_section({"criteria": criteria}))
    assert "| GPU of the T4 figures (recorded by perf.throughput.bs1, perf.throughput.bs16) | NVIDIA T4 |" in rows
    assert "| TensorRT of the T4 figures (recorded by perf.throughput.bs1, perf.throughput.bs16) | 7.2.3.4 |" in rows
