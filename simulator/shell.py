"""``sh -c`` on a simulated device: a tiny, safe subset of the shell, never a real one.

``;``, ``&&``, ``||``, ``|`` (stages run one after another over a bounded buffer), ``>&2``, ``2>&1`` and
``exit N``; anything else is refused with the message sh would print. Each simple command is handed to
the ``run`` the caller gives (simulator/commands.py's table).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

from simulator.command_io import EXIT_USAGE, CommandIO, Handler, Stdin

__all__ = ["run_sh"]

#: Bytes one pipeline stage may hand to the next (keeps a script from eating the simulator's memory).
_PIPE_BUFFER_LIMIT = 16 * 1024 * 1024

_OPERATORS = (";", "&&", "||")


class _ScriptError(Exception):
    """The script uses something outside the subset; the message is what sh would print."""


@dataclass(frozen=True)
class _Simple:
    argv: tuple[str, ...]
    stdout_to_stderr: bool = False
    stderr_to_stdout: bool = False


def _tokenize(script: str) -> list[str]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError as exc:
        raise _ScriptError(f"sh: -c: line 1: syntax error: {exc}") from exc


def _simple(words: list[str]) -> _Simple:
    """One command with its ``>&2`` / ``2>&1`` redirections pulled out."""
    argv: list[str] = []
    result = _Simple(())
    index = 0
    while index < len(words):
        word = words[index]
        if word == ">&" and index + 1 < len(words) and words[index + 1] in ("1", "2"):
            fd_from = argv.pop() if argv and argv[-1] in ("1", "2") else "1"
            target = words[index + 1]
            if fd_from == "1" and target == "2":
                result = replace(result, stdout_to_stderr=True)
            elif fd_from == "2" and target == "1":
                result = replace(result, stderr_to_stdout=True)
            index += 2
            continue
        if set(word) <= set("<>&|") and word:
            raise _ScriptError(f"sh: redirection '{word}' is not supported on this simulated device")
        argv.append(word)
        index += 1
    if not argv:
        raise _ScriptError("sh: -c: line 1: syntax error near unexpected token")
    return replace(result, argv=tuple(argv))


def _parse_script(script: str) -> list[tuple[str, list[_Simple]]]:
    """``[(operator before it, pipeline)]``; the first operator is ``;``."""
    steps: list[tuple[str, list[_Simple]]] = []
    operator, pipeline, words = ";", list[_Simple](), list[str]()
    for token in [*_tokenize(script), ";"]:
        if token in _OPERATORS or token == "|":
            if words:
                pipeline.append(_simple(words))
            elif token != ";" or pipeline:
                raise _ScriptError(f"sh: -c: line 1: syntax error near unexpected token `{token}'")
            words = []
            if token == "|":
                continue
            if pipeline:
                steps.append((operator, pipeline))
            operator, pipeline = token, []
        else:
            words.append(token)
    return steps


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


async def _run_simple(command: _Simple, io: CommandIO, run: Handler) -> int:
    stdout = io.stderr if command.stdout_to_stderr else io.stdout
    stderr = io.stdout if command.stderr_to_stdout else io.stderr
    io = replace(io, stdout=stdout, stderr=stderr)
    if command.argv[0] == "exit":
        code = command.argv[1] if len(command.argv) > 1 else "0"
        raise _Exit(int(code) % 256 if code.lstrip("-").isdigit() else EXIT_USAGE)
    return await run(command.argv, io)


async def _run_pipeline(pipeline: list[_Simple], io: CommandIO, run: Handler) -> int:
    """Stages run one after another, each reading the previous one's buffered output."""
    stdin = io.stdin
    for command in pipeline[:-1]:
        buffer = bytearray()

        async def collect(data: bytes, buffer: bytearray = buffer) -> None:
            if len(buffer) + len(data) > _PIPE_BUFFER_LIMIT:
                raise _ScriptError("sh: pipe buffer limit reached on this simulated device")
            buffer.extend(data)

        await _run_simple(command, replace(io, stdin=stdin, stdout=collect), run)
        stdin = Stdin.of(bytes(buffer))
    return await _run_simple(pipeline[-1], replace(io, stdin=stdin), run)


async def run_sh(argv: Sequence[str], io: CommandIO, run: Handler) -> int:
    """``sh -c <script>``: each simple command of the script goes to ``run``."""
    if len(argv) < 3 or argv[1] != "-c":
        await io.err(f"{argv[0]}: only '{argv[0]} -c <script>' is available on this simulated device\n")
        return EXIT_USAGE
    try:
        steps = _parse_script(argv[2])
        status = 0
        for operator, pipeline in steps:
            if (operator == "&&" and status != 0) or (operator == "||" and status == 0):
                continue
            status = await _run_pipeline(pipeline, io, run)
        return status
    except _Exit as done:
        return done.code
    except _ScriptError as exc:
        await io.err(f"{exc}\n")
        return EXIT_USAGE
