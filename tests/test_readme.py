"""CI must run the README's own test command, so the two cannot drift apart."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if not line.startswith("#")]
    ci_command = next((line for line in commands if "pytest" in line), "")
    readme = (ROOT / "README.md").read_text()
    assert "pytest" in ci_command
    assert f"\n{ci_command}\n" in readme
