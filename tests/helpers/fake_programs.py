"""A stand-in for a scheduler program, for backend tests that need no scheduler."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path


class FakeProgram:
    """A program that logs each call and answers from a list (the last answer repeats)."""

    def __init__(self, directory: Path, name: str, *answers: tuple[str, str, int]) -> None:
        self.path = directory / name
        self.log = directory / f"{name}.calls.jsonl"
        (directory / f"{name}.answers.json").write_text(json.dumps(answers))
        self.path.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            "log, answers = sys.argv[0] + '.calls.jsonl', sys.argv[0] + '.answers.json'\n"
            "call = {'argv': sys.argv[1:], 'stdin': sys.stdin.read(), 'env': dict(os.environ)}\n"
            "with open(log, 'a') as f:\n"
            "    f.write(json.dumps(call) + '\\n')\n"
            "answers = json.load(open(answers))\n"
            "out, err, rc = answers[min(len(open(log).readlines()), len(answers)) - 1]\n"
            "sys.stdout.write(out); sys.stderr.write(err); sys.exit(rc)\n"
        )
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)

    @property
    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]
