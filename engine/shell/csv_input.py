"""Reading a CSV file a person wrote for bulk input: UTF-8 (with or without a BOM), a header
naming the columns, and a one-line error naming the file and line for anything wrong."""

from __future__ import annotations

import csv

from engine.shell.console import UserError

MAX_ROWS = 100_000        # rows in one file: all of them go in one transaction


def read_rows(file: str, *, required: set[str], optional: set[str] = frozenset()) -> list[dict[str, str]]:
    """The data rows as dicts of the header's columns; refused with file:line for an unknown or
    missing column, a row with more fields than the header, too many rows, or bad encoding."""
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            missing = required - columns
            if missing:
                raise UserError(f"{file}:1: the header needs the columns {', '.join(sorted(required))}"
                                f"{' (and optionally ' + ', '.join(sorted(optional)) + ')' if optional else ''}; "
                                f"missing: {', '.join(sorted(missing))}")
            unknown = columns - required - optional
            if unknown:
                raise UserError(f"{file}:1: unknown columns: {', '.join(sorted(unknown))}")
            rows = []
            for n, row in enumerate(reader, start=2):
                if n - 1 > MAX_ROWS:
                    raise UserError(f"{file}: more than {MAX_ROWS:,} rows; split the file")
                if row.get(None):    # csv.DictReader puts fields beyond the header here
                    raise UserError(f"{file}:{n}: more fields than the header has (a value with a comma must "
                                    f"be quoted)")
                rows.append({k: v for k, v in row.items() if v is not None})
            return rows
    except OSError as e:
        raise UserError(f"{file}: cannot read: {e.strerror or e}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{file}: not a UTF-8 CSV file: {str(e)[:200]}") from None
