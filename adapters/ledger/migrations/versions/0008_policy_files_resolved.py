"""policy files identified by their resolved path: versions stored under several
spellings of one file merge into one

Before this revision a version's `file` was the path as typed: `rules/examples/growth.pie`
from one directory, `/srv/pies/rules/examples/growth.pie` from the settings, `./growth.pie`
from another; one file was several policies. Now every door stores the resolved path
(engine/shell/policies.resolve). This revision rewrites what was stored, by one rule:

1. An absolute spelling becomes its resolved path (`..` and symlinks resolved).
2. A relative spelling R was typed from a working directory the ledger never recorded.
   It becomes the one absolute spelling in the ledger whose path ends with R's parts (R
   was typed from a directory above that file); when several end so, the one among them
   that has a version with the same text hash as one of R's; otherwise (none, or still
   several) R resolved against the directory the upgrade runs in.
3. Versions that now have the same file and the same text hash are one version: the
   oldest is kept, accounts and applies of the others point at it, the others go.

Revision ID: 0008
Revises: 0007
"""
import os

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in os.path.normpath(path).split(os.sep) if p not in ("", ".", ".."))


def resolved_files(spellings: dict[str, set[str]], cwd: str) -> dict[str, str]:
    """spelling -> resolved path, by the rule above (`spellings`: spelling -> text hashes)."""
    out = {f: os.path.realpath(f) for f in spellings if os.path.isabs(f)}
    absolute: dict[str, set[str]] = {}
    for f, real in out.items():
        absolute.setdefault(real, set()).update(spellings[f])
    for f in sorted(set(spellings) - set(out)):
        tail = _parts(f)
        ends = sorted(a for a in absolute if tail and _parts(a)[-len(tail):] == tail)
        if len(ends) > 1:
            ends = [a for a in ends if absolute[a] & spellings[f]]
        out[f] = ends[0] if len(ends) == 1 else os.path.realpath(os.path.join(cwd, f))
    return out


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, file, sha256 FROM policy_versions ORDER BY id")).all()
    spellings: dict[str, set[str]] = {}
    for _, file, sha in rows:
        spellings.setdefault(file, set()).add(sha)
    files = resolved_files(spellings, os.getcwd())
    keep: dict[tuple[str, str], int] = {}
    merged: list[tuple[int, int]] = []                  # (version, the version it merges into)
    for vid, file, sha in rows:                          # oldest first: the oldest is kept
        key = (files[file], sha)
        if key in keep:
            merged.append((vid, keep[key]))
        else:
            keep[key] = vid
    for gone, into in merged:
        conn.execute(sa.text("UPDATE accounts SET policy_version_id = :into WHERE policy_version_id = :gone"),
                     {"into": into, "gone": gone})
        conn.execute(sa.text("UPDATE policy_applies SET version_id = :into WHERE version_id = :gone"),
                     {"into": into, "gone": gone})
        conn.execute(sa.text("DELETE FROM policy_versions WHERE id = :gone"), {"gone": gone})
    for (file, _), vid in keep.items():
        conn.execute(sa.text("UPDATE policy_versions SET file = :file WHERE id = :id AND file <> :file"),
                     {"file": file, "id": vid})


def downgrade() -> None:
    pass        # the merged spellings are not known any more; resolved paths work as typed ones did
