"""What a piece of work writes, beside what it costs in time: rows per table (inserted,
updated, of which HOT), index entries per index, and WAL bytes.

- Rows: `pg_stat_user_tables` before and after (`pg_stat_force_next_flush()` and
  `pg_stat_clear_snapshot()` first, so the counters hold this backend's last statements).
- WAL: `pg_current_wal_lsn()` before and `pg_current_wal_flush_lsn()` after (this
  backend's commit has flushed its records by then) delimit the range; the server's WAL is shared
  by every database on it, so the range is read back with pg_walinspect (PostgreSQL 15
  contrib) and only the records of this database's relations are counted, by relation.
  Without pg_walinspect the raw LSN difference is all there is (an upper bound).
- Index entries: the B-tree records that add a leaf entry (INSERT_LEAF, INSERT_POST and the
  two SPLIT records, each of which inserts the entry that caused it), per index.

Full-page images (the first change of a page after a checkpoint logs the whole 8 kB page)
depend on when the last checkpoint was, so WAL is reported with and without them.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DatabaseError, connection

# B-tree WAL records that put one new entry into a leaf page.
INDEX_ENTRY_RECORDS = ("INSERT_LEAF", "INSERT_POST", "SPLIT_L", "SPLIT_R")


def _flush_stats(cursor) -> None:
    cursor.execute("SELECT pg_stat_force_next_flush()")
    cursor.execute("SELECT pg_stat_clear_snapshot()")


def table_counters() -> dict[str, tuple[int, int, int, int]]:
    """(inserted, updated, HOT updated, deleted) rows per user table, as the statistics
    collector holds them now (this backend's pending counts flushed first)."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        _flush_stats(cursor)
        # A second statement: the flush happens as the backend goes idle after the first.
        _flush_stats(cursor)
        cursor.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del "
            "FROM pg_stat_user_tables",
        )
        return {name: (i, u, h, d) for name, i, u, h, d in cursor.fetchall()}


def indexes_of(tables: list[str]) -> dict[str, list[str]]:
    """Index names per table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, i.relname FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE t.relname = ANY(%s) ORDER BY 1, 2",
            [tables],
        )
        out: dict[str, list[str]] = defaultdict(list)
        for table, index in cursor.fetchall():
            out[table].append(index)
        return dict(out)


def _walinspect() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_walinspect'")
        return cursor.fetchone() is not None


def current_lsn(*, flushed: bool = False) -> str:
    """The WAL's insert position now; `flushed`: how far it is on disk, which is as far as
    pg_walinspect reads (this backend's commit has flushed its own records by then)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_flush_lsn()" if flushed
                       else "SELECT pg_current_wal_lsn()")
        return str(cursor.fetchone()[0])


@dataclass
class RelationWal:
    records: int = 0
    bytes: int = 0
    fpi_bytes: int = 0
    index_entries: int = 0
    hot_updates: int = 0
    updates: int = 0


@dataclass
class WriteCost:
    """The rows and WAL of one piece of work."""

    rows: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    lsn_bytes: int = 0  # the raw LSN distance: every database's WAL in the range
    attributed: bool = False  # per-relation figures from pg_walinspect below
    relations: dict[str, RelationWal] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # relation → "table" / "index"
    table_of: dict[str, str] = field(default_factory=dict)  # index → its table

    @property
    def wal_bytes(self) -> int:
        """This database's WAL in the range (all of the range's without pg_walinspect)."""
        if not self.attributed:
            return self.lsn_bytes
        return sum(r.bytes for r in self.relations.values())

    @property
    def fpi_bytes(self) -> int:
        return sum(r.fpi_bytes for r in self.relations.values())

    def _ours(self, name: str, table: str | None) -> bool:
        """An index of the application's tables (of `table`), not of the catalogs (which a
        CREATE TEMPORARY TABLE writes to)."""
        owner = self.table_of.get(name, "")
        return (self.kinds.get(name) == "index" and not owner.startswith("pg_")
                and (table is None or owner == table))

    def index_entries(self, table: str | None = None) -> int:
        return sum(r.index_entries for name, r in self.relations.items()
                   if self._ours(name, table))

    def indexes_touched(self, table: str | None = None) -> list[str]:
        return sorted(name for name, r in self.relations.items()
                      if r.index_entries and self._ours(name, table))

    def table_wal(self, table: str) -> tuple[int, int]:
        """(heap bytes, its indexes' bytes) of one table."""
        heap = self.relations.get(table, RelationWal()).bytes
        idx = sum(r.bytes for name, r in self.relations.items()
                  if self.table_of.get(name) == table)
        return heap, idx

    def hot_share(self, table: str) -> float | None:
        _i, updated, hot, _d = self.rows.get(table, (0, 0, 0, 0))
        return hot / updated if updated else None


def _relation_names() -> tuple[dict[int, str], dict[str, str], dict[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relfilenode, c.relname, c.relkind, t.relname FROM pg_class c "
            "LEFT JOIN pg_index x ON x.indexrelid = c.oid "
            "LEFT JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE c.relfilenode <> 0",
        )
        names, kinds, table_of = {}, {}, {}
        for node, name, kind, table in cursor.fetchall():
            names[node] = name
            kinds[name] = "index" if kind == "i" else "table"
            if table:
                table_of[name] = table
        return names, kinds, table_of


def _wal_of_range(start: str, end: str) -> dict[int, RelationWal]:
    """This database's WAL records between two LSNs, per relation (relfilenode)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
        db_oid = cursor.fetchone()[0]
        cursor.execute(
            """
            SELECT substring(block_ref FROM 'rel \\d+/\\d+/(\\d+)')::bigint AS node,
                   resource_manager, record_type, count(*), sum(record_length),
                   sum(fpi_length)
            FROM pg_get_wal_records_info(%s, %s)
            WHERE block_ref LIKE %s
            GROUP BY 1, 2, 3
            """,
            [start, end, f"%rel %/{db_oid}/%"],
        )
        out: dict[int, RelationWal] = defaultdict(RelationWal)
        for node, rmgr, kind, n, nbytes, fpi in cursor.fetchall():
            rel = out[node]
            rel.records += n
            rel.bytes += int(nbytes)
            rel.fpi_bytes += int(fpi)
            if rmgr == "Btree" and kind in INDEX_ENTRY_RECORDS:
                rel.index_entries += n
            if rmgr == "Heap" and kind.startswith("HOT_UPDATE"):
                rel.hot_updates += n
                rel.updates += n
            elif rmgr == "Heap" and kind.startswith("UPDATE"):
                rel.updates += n
        return dict(out)


@dataclass
class Mark:
    """The counters and the WAL position at the start of a piece of work."""

    counters: dict[str, tuple[int, int, int, int]]
    lsn: str


def begin() -> Mark:
    return Mark(table_counters(), current_lsn())


def end(mark: Mark, *, wal: bool = True) -> WriteCost:
    """What was written since `mark`. `wal=False` skips reading the WAL back (the rows and
    the raw LSN distance are still taken)."""
    stop = current_lsn(flushed=True)
    after = table_counters()
    cost = WriteCost()
    for name, now in after.items():
        was = mark.counters.get(name, (0, 0, 0, 0))
        delta = tuple(a - b for a, b in zip(now, was, strict=True))
        if any(delta):
            cost.rows[name] = delta
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(%s, %s)", [stop, mark.lsn])
        cost.lsn_bytes = int(cursor.fetchone()[0])
    if wal and _walinspect():
        names, cost.kinds, cost.table_of = _relation_names()
        try:
            ranges = _wal_of_range(mark.lsn, stop)
        except DatabaseError as exc:
            # A long range on a busy server: its first segments were recycled at a
            # checkpoint before they could be read. The rows and the raw distance stand.
            if "has already been removed" not in str(exc) and "future" not in str(exc):
                raise
            return cost
        for node, rel in ranges.items():
            cost.relations[names.get(node, f"relfilenode {node}")] = rel
        cost.attributed = True
    return cost


def measure_writes(fn: Callable[[], object], *, wal: bool = True) -> tuple[object, WriteCost]:
    """Run fn and return (its result, what it wrote)."""
    mark = begin()
    result = fn()
    return result, end(mark, wal=wal)


def add(total: WriteCost, part: WriteCost) -> WriteCost:
    """`part` added into `total` (two pieces of work as one)."""
    for name, delta in part.rows.items():
        was = total.rows.get(name, (0, 0, 0, 0))
        total.rows[name] = tuple(a + b for a, b in zip(was, delta, strict=True))
    total.attributed = part.attributed and (total.attributed or not total.lsn_bytes)
    total.lsn_bytes += part.lsn_bytes
    total.kinds.update(part.kinds)
    total.table_of.update(part.table_of)
    for name, rel in part.relations.items():
        mine = total.relations.setdefault(name, RelationWal())
        for attr in ("records", "bytes", "fpi_bytes", "index_entries", "hot_updates",
                     "updates"):
            setattr(mine, attr, getattr(mine, attr) + getattr(rel, attr))
    return total


# ---------------------------------------------------------------------------------------
# Reporting


def kib(nbytes: float) -> str:
    return f"{nbytes / 1024:,.1f} kB"


def per(nbytes: float, n: int) -> str:
    return f"{nbytes / n:,.0f} B" if n else "–"


def wal_cells(cost: WriteCost, n: int) -> list[str]:
    """WAL per unit without and with full-page images (this database's, "–" when the range
    could not be read back), and the raw LSN distance (every database's)."""
    if not cost.attributed:
        return ["–", "–", per(cost.lsn_bytes, n)]
    wal, fpi = cost.wal_bytes, cost.fpi_bytes
    return [per(wal - fpi, n), per(wal, n), per(cost.lsn_bytes, n)]


def rows_table(cost: WriteCost, *, unit: str, n: int) -> tuple[list[str], list[list[str]]]:
    """Per table written: rows inserted and updated (HOT share), its indexes, index entries
    and WAL (heap, indexes), per `unit` (n of them)."""
    tables = sorted({t for t in cost.rows} | {cost.table_of.get(r, r) for r in cost.relations
                                               if cost.kinds.get(r)},
                    key=lambda t: -sum(cost.table_wal(t)))
    indexes = indexes_of(tables)
    headers = ["table", "rows inserted", "rows updated", "of which HOT", "indexes",
               "indexes written", "index entries", f"index entries per {unit}",
               f"heap WAL per {unit}", f"index WAL per {unit}"]
    out = []
    for table in tables:
        ins, upd, hot, _dele = cost.rows.get(table, (0, 0, 0, 0))
        heap, idx = cost.table_wal(table)
        entries = cost.index_entries(table)
        if not (ins or upd) and (heap + idx) < max(n, 1):
            continue  # sequences, row locks of foreign-key checks: under 1 B per unit
        out.append([
            f"`{table}`", f"{ins:,}", f"{upd:,}",
            f"{hot:,} ({hot / upd:.0%})" if upd else "–",
            str(len(indexes.get(table, []))), str(len(cost.indexes_touched(table))),
            f"{entries:,}", f"{entries / n:.1f}" if n else "–", per(heap, n), per(idx, n),
        ])
    return headers, out


def summary(cost: WriteCost, *, unit: str, n: int) -> str:
    """One line: WAL per unit (without and with full-page images), index entries per unit."""
    if not cost.attributed:
        return (f"WAL {per(cost.lsn_bytes, n)} per {unit} (raw LSN distance: every "
                "database's WAL on the server in that time; pg_walinspect not installed)")
    wal, fpi = cost.wal_bytes, cost.fpi_bytes
    return (f"WAL {per(wal - fpi, n)} per {unit} without full-page images, {per(wal, n)} "
            f"with them; {cost.index_entries() / n:.1f} index entries per {unit} in "
            f"{len(cost.indexes_touched())} indexes (raw LSN distance {per(cost.lsn_bytes, n)} "
            f"per {unit}, other databases' WAL included)")
