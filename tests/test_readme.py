"""The README's promises: its two commands, its quick start output, its file map."""

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_first_screen_has_exactly_two_commands_and_ci_runs_the_test_command():
    commands = [line.split("#")[0].strip() for line in blocks("bash")[0].strip().splitlines()]
    assert len(commands) == 2
    install_and_run, test = commands
    assert "jaxgd demo" in install_and_run
    assert "pytest" in test and "torch==2.13.0" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines(), "`.ci/run` must run the README's test command verbatim"


def test_quick_start_prints_its_expected_output():
    code = blocks("python")[0]
    expected = blocks("text")[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README quick start", "exec"), {})
    assert out.getvalue() == expected
    assert len(code.strip().splitlines()) <= 15


def test_file_map_names_files_that_exist():
    section = README.split("## Where things are")[1].split("\n## ")[0]
    paths = re.findall(r"^\| `([^`]+)`", section, flags=re.M)
    assert paths
    for cell in paths:
        for path in re.findall(r"[\w/]+\.(?:py|md)|[\w/]+/$", cell) or [cell]:
            assert (ROOT / path).exists(), path


def test_goals_table_is_the_one_in_benchmarks_md():
    # The README copies the goals table of the committed BENCHMARKS.md, which `python -m benchmarks`
    # writes: a figure in one but not the other was not produced by the harness's last run.
    def goal_rows(text):
        section = text.split("| case | goal | measured | spread | met |")[1].split("\n\n")[0]
        return [line for line in section.strip().splitlines() if line.startswith("| ")]

    rows = goal_rows(README)
    assert len(rows) >= 10
    assert rows == goal_rows((ROOT / "BENCHMARKS.md").read_text())


def test_defaults_table_is_the_one_in_benchmarks_md():
    # The same for the defaults section's goals (issue 14), with its bare XLA bound column.
    header = "| case | goal | measured | spread | met | bare XLA bound |"

    def rows(text):
        section = text.split(header)[1].split("\n\n")[0]
        return [line for line in section.strip().splitlines() if line.startswith("| ")]

    assert len(rows(README)) == 8  # The eight goals.
    assert rows(README) == rows((ROOT / "BENCHMARKS.md").read_text())


def test_own_loop_snippet_runs_after_the_quick_start():
    """The "Writing your own loop" block, run in the quick start's namespace, prints its comment."""
    quick = blocks("python")[0]
    own = next(block for block in blocks("python") if "jaxgd.train_epoch(" in block)
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(quick, "README quick start", "exec"), namespace)
        start = len(out.getvalue())
        exec(compile(own, "README own loop", "exec"), namespace)
    printed = out.getvalue()[start:].strip()
    assert printed == own.split("print(")[1].split("# ")[1].split(":")[0].strip()


def test_checkpoint_snippet_prints_its_expected_output(tmp_path, monkeypatch):
    """The Checkpoints block, run after the quick start in a fresh directory."""
    quick = blocks("python")[0]
    block = next(b for b in blocks("python") if 'checkpoint="runs/logistic"' in b)
    expected = re.search(r"```text\n(.*?)```", README[README.index(block) :], re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(quick, "README quick start", "exec"), namespace)
        start = len(out.getvalue())
        exec(compile(block, "README checkpoints", "exec"), namespace)
    assert out.getvalue()[start:] == expected
