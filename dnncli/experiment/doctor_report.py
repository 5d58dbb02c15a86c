"""``dnn doctor``'s result, and ``--write-config``: the config with every fix applied, each key once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dnncli.diagnostics.checkup import FAIL, OK, WARN, Check


@dataclass
class DoctorReport:
    """Every check's verdict on one config, and the time it all took."""

    config: str
    source: str
    checks: list[Check]
    seconds: float
    written: str | None = None
    skipped_fixes: list[str] = field(default_factory=list)  # fixes --write-config left out (a key set already)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == FAIL]

    @property
    def warned(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == WARN]

    def fixes(self) -> list[str]:
        """Every fix of a check that did not pass, each key once (the first check to set it wins: the checks come
        in the order of their causes, the data first)."""
        return merged([c.fix for c in self.checks if c.verdict != OK])[0]

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "source": self.source,
            "passed": not self.failed,
            "failed": len(self.failed),
            "warned": len(self.warned),
            "checks": [c.to_dict() for c in self.checks],
            "fixes": self.fixes(),
            "seconds": self.seconds,
            "written": self.written,
            "skipped_fixes": self.skipped_fixes,
        }


def merged(fixes: list[list[str]]) -> tuple[list[str], list[str]]:
    """(kept, left out): the overrides in order, leaving out any whose key, or a key inside or around it, an
    earlier one set (``model.layers=[...]`` and ``model.layers.2.units`` set one place)."""
    kept, dropped, keys = [], [], []
    for override in (o for fix in fixes for o in fix):
        if override in kept:  # two checks with one fix (unscaled inputs fail the input scale and the loss)
            continue
        key = override.split("=", 1)[0]
        if any(key == k or key.startswith(k + ".") or k.startswith(key + ".") for k in keys):
            dropped.append(override)
            continue
        keys.append(key)
        kept.append(override)
    return kept, dropped


def write_fixed(config, report: DoctorReport, out: Path, force: bool = False) -> Path | None:
    """Write ``config`` with every fix of ``report`` applied (each key once); None, writing nothing, where no check
    has a fix. Never over a file without ``force``, never over anything but a regular file."""
    from dnncli.experiment.cure import dump_config
    from dnncli.files import atomic_write_text, check_target

    check_target(out, force, "--write-config")
    kept, dropped = merged([c.fix for c in report.checks if c.verdict != OK])
    report.skipped_fixes = dropped
    if not kept:
        return None
    fixed = config.with_overrides(kept)  # resolved again: the written config is one dnn train takes
    written = fixed.written if fixed.written is not None else fixed.resolved
    lines, said = [], set()
    for c in report.checks:  # each override under the first check that gave it
        mine = [o for o in c.fix if o in kept and o not in said] if c.verdict != OK else []
        said.update(mine)
        if mine:
            lines.append(f"{c.name} ({c.verdict}): {' '.join(mine)}")
    comment = f"{config.name} ({report.source}), with the fixes dnn doctor gave:\n" + "\n".join(lines)
    atomic_write_text(Path(out), dump_config(written, comment))
    report.written = str(out)
    return Path(out)
