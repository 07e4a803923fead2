"""The one writer of the benchmark scripts' sections in docs/benchmarks.md."""

from pathlib import Path

PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(report: str, *, start: str, end: str) -> None:
    """Replace the section between the markers `start` and `end` (which `report` begins and ends with), or
    append `report` when the file has no such section yet."""
    text = PATH.read_text() if PATH.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + report + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + report + "\n"
    PATH.write_text(text)
