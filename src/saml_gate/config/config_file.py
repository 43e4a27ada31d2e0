"""``saml-gate.toml``: every setting by its declared name, plus ``[[rules]]`` tables.

Read with the standard library's :mod:`tomllib`, which gives values but no positions: the line
of each key and of each ``[[rules]]`` table is found by scanning the text, so that every
problem names the file, the line and the setting. A file is read whole and checked whole:
every problem at once, as :mod:`~saml_gate.config.validation` does for the settings.

    base_url = "https://gate.acme.example"
    authorized_groups = ["staff"]
    public_paths = ["/static/"]

    [[rules]]
    path = "/admin/"
    groups = ["admins"]
    methods = ["GET", "POST"]

A ``[[rules]]`` table's keys are :class:`~saml_gate.policy.Rule`'s keyword arguments (``path``
is its first; ``re:`` starts a pattern, as in the text form); they become ``access_rules``.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from saml_gate.errors import ConfigError
from saml_gate.policy import Rule, as_rule

#: The setting that names the file (its keyword, flag and variable).
SETTING: Final = "config_file"
RULES_TABLE: Final = "rules"
_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")


class FileError(ConfigError):
    """A problem of one setting in the file: it names the file and the line."""

    def __init__(self, path: str, line: int | None, setting: str, problem: str) -> None:
        super().__init__(setting, problem)
        self.path = path
        self.line = line
        place = f"{path}, line {line}" if line else path
        self.args = (f"{place}: saml-gate setting {setting!r}: {problem}",)


@dataclass(frozen=True)
class Place:
    """Where a rule of the policy was written: the file and the line of its table or key."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.what} at {self.path} line {self.line}"


@dataclass(frozen=True)
class ConfigFile:
    """What one file says: ``values`` by setting name (rules already :class:`Rule`), the line of
    each (``lines``), the place of each of ``access_rules`` and ``public_paths``, and every
    problem found."""

    path: str
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    rule_places: tuple[Place, ...] = ()
    public_places: tuple[Place, ...] = ()
    problems: tuple[FileError, ...] = ()

    def error(self, problem: ConfigError) -> FileError:
        """A settings problem found on the file's values, placed at its setting's line."""
        if isinstance(problem, FileError):
            return problem
        return FileError(
            self.path, self.lines.get(problem.setting), problem.setting, problem.problem
        )


def read_config_file(path: str, known: Mapping[str, bool]) -> ConfigFile:
    """The file at ``path`` (never raises for its content: problems are in the result).
    ``known``: every declared setting's name, and whether it can be given outside Python."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return ConfigFile(
            path, problems=(FileError(path, None, SETTING, f"cannot read it ({why})"),)
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+)", str(exc))  # tomllib's own words say where
        line = int(found.group(1)) if found else None
        return ConfigFile(path, problems=(FileError(path, line, SETTING, f"not TOML: {exc}"),))
    return _parse(path, text, document, known)


def _parse(path: str, text: str, document: dict[str, Any], known: Mapping[str, bool]) -> ConfigFile:
    lines = text.splitlines()
    top = _top_level_lines(lines)
    tables = _rule_tables(lines)
    values: dict[str, Any] = {}
    problems: list[FileError] = []
    for name, value in document.items():
        line = top.get(name)
        if name == RULES_TABLE:
            continue
        if name == SETTING:
            problems.append(FileError(path, line, name, "a configuration file cannot name another"))
        elif name not in known:
            if isinstance(value, dict):
                line = _header_line(lines, name)
                problems.append(FileError(path, line, name, "unknown table; only [[rules]]"))
            else:
                problems.append(FileError(path, line, name, "unknown setting"))
        elif not known[name]:
            problems.append(FileError(path, line, name, "is given in Python only (a keyword)"))
        elif name == "access_rules":  # the text form, one rule per string
            rules = _text_rules(path, line, value, problems)
            if rules is not None:
                values[name] = rules
        else:
            values[name] = tuple(value) if isinstance(value, list) else value
    rule_places: list[Place] = []
    raw_rules = document.get(RULES_TABLE)
    if raw_rules is not None:
        if "access_rules" in values:
            problems.append(
                FileError(
                    path,
                    top.get("access_rules"),
                    "access_rules",
                    "give the rules either as access_rules or as [[rules]] tables, not both",
                )
            )
        elif not isinstance(raw_rules, list) or not all(isinstance(t, dict) for t in raw_rules):
            problems.append(
                FileError(
                    path, top.get(RULES_TABLE), "access_rules", "rules must be [[rules]] tables"
                )
            )
        else:
            table_rules: list[Rule] = []
            for index, table in enumerate(raw_rules):
                start, keys = tables[index] if index < len(tables) else (None, {})
                rule, rule_problems = _rule(path, table, start, keys)
                problems += rule_problems
                if rule is not None:
                    table_rules.append(rule)
                    rule_places.append(Place(path, start or 0, f"[[rules]] #{index + 1}"))
            values["access_rules"] = tuple(table_rules)
    elif "access_rules" in values:
        line = top.get("access_rules", 0)
        count = len(values["access_rules"]) if isinstance(values["access_rules"], tuple) else 1
        rule_places = [Place(path, line, f"access_rules[{i}]") for i in range(count)]
    public_line = top.get("public_paths", 0)
    public = values.get("public_paths", ())
    public_places = tuple(
        Place(path, public_line, f"public_paths[{i}]")
        for i in range(len(public) if isinstance(public, tuple) else 0)
    )
    return ConfigFile(
        path,
        values,
        {name: line for name, line in top.items() if name in values},
        tuple(rule_places),
        public_places,
        tuple(problems),
    )


def _text_rules(
    path: str, line: int | None, value: object, problems: list[FileError]
) -> tuple[Rule, ...] | None:
    """``access_rules = ["/admin/ groups=admins", ...]``: rules in their text form."""
    items = value if isinstance(value, list) else [value]
    rules: list[Rule] = []
    for item in items:
        try:
            rules.append(as_rule(item))
        except ConfigError as exc:
            problems.append(FileError(path, line, "access_rules", exc.problem))
    return tuple(rules) if len(rules) == len(items) else None


def _rule_keywords() -> frozenset[str]:
    """What a ``[[rules]]`` table may say: :class:`Rule`'s parameters, whatever they are."""
    return frozenset(inspect.signature(Rule.__init__).parameters) - {"self"}


def _rule(
    path: str, table: dict[str, Any], start: int | None, keys: dict[str, int]
) -> tuple[Rule | None, list[FileError]]:
    """One ``[[rules]]`` table as a :class:`Rule`, or its problems (each at its key's line)."""
    allowed = _rule_keywords()
    problems = [
        FileError(
            path,
            keys.get(key, start),
            "access_rules",
            f"[[rules]]: unknown key {key!r} (known: {', '.join(sorted(allowed))})",
        )
        for key in table
        if key not in allowed
    ]
    if "path" not in table:
        problems.append(FileError(path, start, "access_rules", "[[rules]]: a rule needs a path"))
    if problems:
        return None, problems
    arguments: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value for key, value in table.items()
    }
    rule_path: Any = arguments.pop("path")
    if isinstance(rule_path, str) and rule_path.startswith("re:"):
        try:
            rule_path = re.compile(rule_path[3:])
        except re.error as exc:
            return None, [
                FileError(path, keys.get("path", start), "access_rules", f"bad pattern: {exc}")
            ]
    try:
        return Rule(rule_path, **arguments), []
    except ConfigError as exc:
        return None, [
            FileError(path, _line_of_problem(exc, keys, start), "access_rules", exc.problem)
        ]
    except (TypeError, AttributeError, ValueError) as exc:  # a value of the wrong TOML type
        return None, [FileError(path, start, "access_rules", f"[[rules]]: {exc}")]


def _line_of_problem(problem: ConfigError, keys: dict[str, int], start: int | None) -> int | None:
    """The line of the key a rule's problem speaks of, else the table's."""
    for key, line in keys.items():
        if key in problem.problem or key.rstrip("s") in problem.problem:
            return line
    return start


def _key_name(match: re.Match[str]) -> str:
    return match.group(1).strip("\"'")


def _top_level_lines(lines: list[str]) -> dict[str, int]:
    """The line of each key before the first table header."""
    found: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if _HEADER.match(line) and not _KEY.match(line):
            break
        match = _KEY.match(line)
        if match:
            found.setdefault(_key_name(match), number)
    return found


def _rule_tables(lines: list[str]) -> list[tuple[int, dict[str, int]]]:
    """Each ``[[rules]]`` table's header line and the lines of its keys (also those of its
    sub-tables, such as ``[rules.attributes]``)."""
    tables: list[tuple[int, dict[str, int]]] = []
    current: dict[str, int] | None = None
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line) if not _KEY.match(line) else None
        if header:
            name = header.group(1).replace(" ", "")
            if line.lstrip().startswith("[[") and name == RULES_TABLE:
                current = {}
                tables.append((number, current))
            elif name.startswith(RULES_TABLE + ".") and current is not None:
                current.setdefault(name.split(".", 1)[1].split(".")[0], number)
            else:
                current = None
            continue
        match = _KEY.match(line)
        if match and current is not None:
            current.setdefault(_key_name(match), number)
    return tables


def _header_line(lines: list[str], name: str) -> int | None:
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line)
        if header and header.group(1).replace(" ", "").split(".")[0] == name:
            return number
    return None


def policy_places(
    public_paths: tuple[str, ...], access_rules: tuple[Rule, ...], file: ConfigFile | None
) -> tuple[str | None, ...]:
    """Where each rule of a policy (``public_paths``, then ``access_rules``) was written: the
    file's place where the file gave that setting (a keyword or variable may have won)."""
    public = file.public_places if file and file.values.get("public_paths") == public_paths else ()
    rules = file.rule_places if file and file.values.get("access_rules") == access_rules else ()
    return (
        *(str(p) for p in public),
        *((None,) * (len(public_paths) - len(public))),
        *(str(p) for p in rules),
        *((None,) * (len(access_rules) - len(rules))),
    )
