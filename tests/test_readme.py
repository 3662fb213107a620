"""The README is executable: every Python and shell block runs as written, or says it is an excerpt.

Markers are HTML comments (GitHub does not render them) on the lines right above a block's
opening fence: ``<!-- excerpt: why -->`` marks a block that is not run; ``<!-- expect: REGEX -->``
is a pattern that the block's output (stdout and stderr) must contain, e.g. the outcome a training
command promises. Every ``python`` or ``bash`` block that is not an excerpt runs here, each in a
fresh interpreter or shell, in a temporary folder that holds the data files the README's snippets
name (``qa.jsonl``, ``tokenizer.json``).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUNNABLE = ("python", "bash")
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(excerpt|expect):\s*(\S.*?)\s*-->\s*$")
TIMEOUT_S = 240


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its first line in the file, its text."""

    language: str
    line: int
    code: str
    excerpt: str | None  # the reason given by the marker, or None when the block runs
    expect: tuple[str, ...] = ()  # patterns its output must contain

    @property
    def name(self) -> str:
        return f"{self.language}@L{self.line}"


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the excerpt marker of the line above it."""
    lines, blocks, index = text.splitlines(), [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"unclosed code block at line {index + 1}")
        markers: dict[str, list[str]] = {"excerpt": [], "expect": []}
        above = index - 1
        while above >= 0 and (marker := MARKER.match(lines[above])):
            markers[marker.group(1)].insert(0, marker.group(2))
            above -= 1
        code = "\n".join(lines[index + 1 : end]) + "\n"
        excerpt = markers["excerpt"][0] if markers["excerpt"] else None
        block = Block(opening.group(1), index + 2, code, excerpt, tuple(markers["expect"]))
        blocks.append(block)
        index = end + 1
    return blocks


BLOCKS = parse_blocks(README.read_text(encoding="utf-8"))
RUN = [b for b in BLOCKS if b.language in RUNNABLE and b.excerpt is None]


def test_parse_blocks_reads_languages_lines_and_excerpt_markers() -> None:
    text = (
        "intro\n"
        "```python\nprint(1)\n```\n"
        "<!-- excerpt: needs a GPU -->\n"
        "```bash\nnvidia-smi\n```\n"
        "<!-- a plain comment -->\n"
        "```\nplain text\n```\n"
        "<!-- expect: final x=1 -->\n"
        "<!-- expect: done -->\n"
        "```bash\ntrain\n```\n"
    )
    assert parse_blocks(text) == [
        Block("python", 3, "print(1)\n", None),
        Block("bash", 7, "nvidia-smi\n", "needs a GPU"),
        Block("", 11, "plain text\n", None),
        Block("bash", 16, "train\n", None, ("final x=1", "done")),
    ]


def test_parse_blocks_rejects_an_unclosed_block() -> None:
    with pytest.raises(ValueError, match="unclosed code block at line 2"):
        parse_blocks("text\n```python\nprint(1)\n")


def test_every_code_block_of_the_readme_is_classified() -> None:
    # A new language tag would escape the test silently: name every one the README uses.
    assert {b.language for b in BLOCKS} <= {"python", "bash", ""}
    assert all(b.excerpt is None for b in BLOCKS if b.language == ""), "mark only code"
    assert len(RUN) >= 10, [b.name for b in RUN]  # the README's runnable core stays runnable


def test_the_set_up_excerpt_is_what_ci_runs() -> None:
    setup = next(b for b in BLOCKS if "python3 -m venv" in b.code)
    assert setup.excerpt is not None
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert '".[all,ray,test-clients]"' in setup.code and '".[all,ray,test-clients]"' in ci
    assert "torch==2.13.0" in setup.code and "torch==2.13.0" in ci
    puffer = "--no-deps -r requirements/pufferlib-no-deps.txt"  # else its test is skipped
    assert puffer in setup.code and puffer in ci


def write_data_files(folder: Path) -> None:
    """The files the custom-data snippets read: a JSONL dataset and a BPE tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rows = [("hi", "hello"), ("2+2", "4"), ("ab", "ba"), ("sky", "blue")]
    (folder / "qa.jsonl").write_text(
        "".join(f'{{"prompt": "{p}", "answer": "{a}"}}\n' for p, a in rows), encoding="utf-8"
    )
    hf = Tokenizer(models.BPE(unk_token=None))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=280,
        special_tokens=["<pad>", "<bos>", "<sep>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator(["abcde edcba abc cab bca"] * 20, trainer)
    hf.save(str(folder / "tokenizer.json"))


def missing_module(code: str) -> str | None:
    """The first top-level module a block imports that is not installed, else None."""
    for name in re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", code, flags=re.M):
        if importlib.util.find_spec(name) is None:
            return name
    return None


def block_param(block: Block) -> object:
    marks = [pytest.mark.slow]
    if re.search(r"\bray\b", block.code):
        marks.append(pytest.mark.ray)
    return pytest.param(block, id=block.name, marks=marks)


@pytest.mark.parametrize("block", [block_param(b) for b in RUN])
def test_readme_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    missing = missing_module(block.code) if block.language == "python" else None
    if missing is not None:
        pytest.skip(f'{block.name} needs {missing}: pip install -e ".[all,ray,test-clients]"')
    write_data_files(tmp_path)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    env.pop("PYTHONPATH", None)
    if block.language == "python":
        command = [sys.executable, "-c", block.code]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README {block.name} failed:\n{output[-5000:]}"
    for pattern in block.expect:
        assert re.search(pattern, output), (
            f"README {block.name}: no {pattern!r} in\n{output[-3000:]}"
        )


# A quoted block: <!-- findings: REPORT --> or <!-- speed goals: REPORT -->, closed by its name.
QUOTE = re.compile(r"<!-- (findings|speed goals): (\S+) -->\n(.*?)<!-- /\1 -->\n", re.S)
# Where each quote's bullets start in a report.
QUOTED_SECTIONS = {"findings": "## Findings", "speed goals": "Speed goals (ratios"}


def report_bullets(report: Path, start: str) -> str:
    """The first run of bullet lines after ``start`` in a report, as the report writes them."""
    lines = report.read_text().split(start, 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("- "))
    bullets = itertools.takewhile(lambda line: line.startswith("- "), lines[first:])
    return "".join(line + "\n" for line in bullets)


def test_the_readme_quotes_the_committed_report_word_for_word() -> None:
    quotes = QUOTE.findall(README.read_text())
    assert sorted({name for name, _, _ in quotes}) == sorted(QUOTED_SECTIONS)
    for name, path, quoted in quotes:
        expected = report_bullets(ROOT / path, QUOTED_SECTIONS[name])
        assert quoted == expected, f"README's quote of {name} in {path} is stale"
