"""The terminal's "vnet-accept self-test" section: the score once, a failure's reason, every missed defect."""

from __future__ import annotations

from types import SimpleNamespace

from vnet_accept.plugin import records, selftest_fixtures


class _Terminal:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str) -> None:
        self.lines.append(f"== {title}")

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def _summary(monkeypatch, verdict: str, reason: str, defects: list) -> list[str]:
    score = SimpleNamespace(id=selftest_fixtures.MUTATION_SCORE_ID, verdict=verdict, measured="12/13",
                            threshold="all caught, 0 false alarms", reason=reason,
                            details={"defects": defects, "false_alarms": []})
    monkeypatch.setattr(records, "collected_criteria", lambda _config: [score])
    config = SimpleNamespace(get_verbosity=lambda: 0)
    terminal = _Terminal()
    selftest_fixtures.pytest_terminal_summary(terminal, config)
    return terminal.lines


def test_a_pass_states_the_score_once(monkeypatch):
    lines = _summary(monkeypatch, "pass", "PASS mutation score 13/13 planted defects caught", [
        {"defect": "swapped_outputs", "caught": True, "messages": {"om.parity": "FAIL tile 1 holds tile 2"}}])
    assert lines == ["== vnet-accept self-test",
                     "PASS selftest.mutation_score: 12/13 (all caught, 0 false alarms)"]


def test_a_failure_gives_its_reason_and_the_missed_defect(monkeypatch):
    lines = _summary(monkeypatch, "fail", "FAIL mutation score 12/13; missed: wrong_scaling", [
        {"defect": "wrong_scaling", "caught": False, "messages": {"accuracy.error_rate": "PASS 0.4 %"}}])
    assert lines[1] == ("FAIL selftest.mutation_score: 12/13 (all caught, 0 false alarms) — FAIL mutation score "
                        "12/13; missed: wrong_scaling")
    assert "wrong_scaling" in lines[2] and "MISSED" in lines[2]
