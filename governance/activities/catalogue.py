"""The shipped catalogue of engagement activities, read from policies/activities.toml."""

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from flask import current_app

CATALOGUE_FILE = "activities.toml"
SHIPPED_CODE = re.compile(r"^[A-Z]{2}-\d{2}$")


@dataclass(frozen=True)
class Activity:
    code: str
    stage: str
    name: str
    description: str
    example: str | None = None
    retired: bool = False
    organisation_id: int | None = None  # set for an organisation's own activity
    record_id: int | None = None  # its CustomActivity id

    @property
    def is_custom(self) -> bool:
        return self.organisation_id is not None

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "stage": self.stage,
            "name": self.name,
            "description": self.description,
            "example": self.example,
            "custom": self.is_custom,
            "organisation_id": self.organisation_id,
            "retired": self.retired,
        }


@dataclass(frozen=True)
class Catalogue:
    version: str
    effective_from: date | None
    source: str
    stages: dict[str, str]  # code -> label, in display order
    activities: tuple[Activity, ...]

    def by_code(self) -> dict[str, Activity]:
        return {activity.code: activity for activity in self.activities}


class CatalogueError(Exception):
    """The catalogue file cannot be used; `problems` says why, one readable line each."""

    def __init__(self, path: Path, problems: list[str]):
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def catalogue_path() -> Path:
    return Path(current_app.config["POLICIES_DIR"]) / CATALOGUE_FILE


def current_catalogue() -> Catalogue:
    """Return the catalogue, read once per version of the file on disk."""
    path = catalogue_path()
    return _load_cached(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _load_cached(path: str, _mtime_ns: int) -> Catalogue:
    return load_catalogue(Path(path))


def load_catalogue(path: Path) -> Catalogue:
    """Read and check a catalogue file; raise CatalogueError listing every problem."""
    problems = check_catalogue(path)
    if problems:
        raise CatalogueError(path, problems)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    stages = {stage["code"]: stage["label"] for stage in data["stages"]}
    activities = tuple(
        Activity(
            code=item["code"],
            stage=item["stage"],
            name=item["name"].strip(),
            description=" ".join(item["description"].split()),
            example=" ".join(item["example"].split()) if item.get("example") else None,
            retired=bool(item.get("retired", False)),
        )
        for item in data["activities"]
    )
    return Catalogue(
        version=str(data["version"]),
        effective_from=data.get("effective_from"),
        source=" ".join(str(data.get("source", "")).split()),
        stages=stages,
        activities=activities,
    )


def check_catalogue(path: Path) -> list[str]:
    """Return every problem of a catalogue file as a readable message (empty when it is valid)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{path.name} is missing."]
    except tomllib.TOMLDecodeError as error:
        return [f"{path.name} is not valid TOML: {error}."]
    problems = []
    for key in ("version", "source", "stages", "activities"):
        if key not in data:
            problems.append(f"top-level '{key}' is missing.")
    if problems:
        return problems
    if "effective_from" in data and not isinstance(data["effective_from"], date):
        problems.append("'effective_from' must be a date such as 2025-01-01.")
    stage_codes = []
    for number, stage in enumerate(data["stages"], start=1):
        if not isinstance(stage, dict) or not stage.get("code") or not stage.get("label"):
            problems.append(f"stage {number}: needs a 'code' and a 'label'.")
            continue
        stage_codes.append(stage["code"])
    seen: set[str] = set()
    active = 0
    for number, item in enumerate(data["activities"], start=1):
        where = f"activity {number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a table.")
            continue
        code = item.get("code")
        if code:
            where = f"activity {code}"
        unknown = set(item) - {"code", "stage", "name", "description", "example", "retired"}
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}.")
        if not isinstance(code, str) or not SHIPPED_CODE.match(code):
            problems.append(f"{where}: code must look like 'RP-01' (two capitals, dash, "
                            "two digits).")
        elif code in seen:
            problems.append(f"{where}: code is used twice.")
        else:
            seen.add(code)
        if item.get("stage") not in stage_codes:
            problems.append(f"{where}: stage must be one of {', '.join(stage_codes)}.")
        for key in ("name", "description"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                problems.append(f"{where}: '{key}' is required.")
        if "example" in item and not isinstance(item["example"], str):
            problems.append(f"{where}: 'example' must be text.")
        if not isinstance(item.get("retired", False), bool):
            problems.append(f"{where}: 'retired' must be true or false.")
        if not item.get("retired", False):
            active += 1
    if not active:
        problems.append("the catalogue lists no current activity.")
    return problems
