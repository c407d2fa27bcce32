"""The load dataset: built once into a database of its own, reused by every run.

    python -m bench.load.dataset                # build it unless it is there already
    python -m bench.load.dataset --rebuild      # build it again

The database is DATABASE_URL's name with "_load" (or --database). It is built under a
temporary name and renamed when complete, so an interrupted build never leaves half a
dataset under the real name; its manifest (scale, the ids the run needs, the build date)
is the database's COMMENT. Each run works on a copy made with CREATE DATABASE … TEMPLATE,
so every run starts from the same rows and the dataset itself is never changed.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from urllib.parse import urlsplit, urlunsplit

# Bump when the world changes shape: a dataset of another version is rebuilt.
VERSION = 2
MAX_AGE_DAYS = 25  # the billing days and validity windows are counted from the build


class DatasetError(SystemExit):
    pass


def server_url(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _admin(url: str):
    """An autocommit connection to the server's maintenance database (CREATE and DROP
    DATABASE run outside a transaction)."""
    import psycopg

    return psycopg.connect(server_url(url, "postgres"), autocommit=True)


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise DatasetError(f"Refusing an odd database name: {name!r}")
    return f'"{name}"'


def _terminate(cur, name: str) -> None:
    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", [name])


def exists(url: str, name: str) -> bool:
    with _admin(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            [name]).fetchone() is not None


def manifest(url: str, name: str) -> dict | None:
    with _admin(url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name]).fetchone()
    if not row or not row[0]:
        return None
    try:
        return json.loads(row[0])
    except ValueError:
        return None


def drop(url: str, name: str) -> None:
    with _admin(url) as conn, conn.cursor() as cur:
        _terminate(cur, name)
        cur.execute(f"DROP DATABASE IF EXISTS {_quote(name)}")


def clone(url: str, source: str, target: str) -> float:
    """A fresh copy of the dataset for one run (a file copy: seconds, not a reload)."""
    start = time.perf_counter()
    with _admin(url) as conn, conn.cursor() as cur:
        _terminate(cur, target)
        cur.execute(f"DROP DATABASE IF EXISTS {_quote(target)}")
        _terminate(cur, source)
        cur.execute(f"CREATE DATABASE {_quote(target)} TEMPLATE {_quote(source)} "
                    "STRATEGY FILE_COPY")
    return time.perf_counter() - start


def setup_django(url: str, *, eager: bool = True) -> None:
    """Django on `url`. The build runs its tasks in-process (no broker), so nothing it
    enqueues waits in Redis for the run's workers."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "couponplatform.settings")
    if eager:
        os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("SECRET_KEY", "load-dataset-build-" + secrets.token_urlsafe(50))
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    import django

    django.setup()


def build(url: str, name: str, *, scale_name: str = "full", log=print) -> dict:
    """Build the dataset into `name` (via `name`_build) and return its manifest."""
    from bench.load.scale import Scale

    building = f"{name}_build"
    drop(url, building)
    with _admin(url) as conn:
        conn.execute(f"CREATE DATABASE {_quote(building)}")
    setup_django(server_url(url, building))
    from django.core.management import call_command
    from django.db import connection

    from bench import data
    from bench.load.world import world_make

    scale = Scale.tiny() if scale_name == "tiny" else Scale()
    start = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    result = world_make(scale, log=log)
    log("VACUUM ANALYZE")
    data.analyze()
    result.update(version=VERSION, scale_name=scale_name,
                  build_seconds=round(time.perf_counter() - start))
    with connection.cursor() as cursor:
        cursor.execute(f"COMMENT ON DATABASE {_quote(building)} IS %s", [json.dumps(result)])
    connection.close()
    with _admin(url) as conn, conn.cursor() as cur:
        _terminate(cur, name)
        cur.execute(f"DROP DATABASE IF EXISTS {_quote(name)}")
        _terminate(cur, building)
        cur.execute(f"ALTER DATABASE {_quote(building)} RENAME TO {_quote(name)}")
    return result


def usable(found: dict | None, *, scale_name: str, today=None) -> str | None:
    """Why a built dataset can not serve this run, or None."""
    import datetime as dt

    if found is None:
        return "no dataset (or one whose build did not finish)"
    if found.get("version") != VERSION:
        return f"dataset version {found.get('version')}, this code builds {VERSION}"
    if found.get("scale_name") != scale_name:
        return f"dataset scale {found.get('scale_name')!r}, asked for {scale_name!r}"
    today = today or dt.date.today()
    age = (today - dt.date.fromisoformat(found["built_on"])).days
    if age > MAX_AGE_DAYS:
        return f"dataset built {age} days ago (its validity windows are counted from then)"
    return None


def ensure(url: str, name: str, *, scale_name: str = "full", rebuild: bool = False,
           log=print) -> dict:
    """The dataset's manifest, building it first when it is missing, stale or asked for."""
    found = manifest(url, name) if exists(url, name) else None
    why = "asked to rebuild" if rebuild else usable(found, scale_name=scale_name)
    if why is None:
        log(f"dataset {name}: reusing the build of {found['built_on']} "
            f"({found['coupons']:,} coupons, {found['sub_accounts']:,} sub-accounts)")
        return found
    log(f"dataset {name}: building ({why})")
    return build(url, name, scale_name=scale_name, log=log)


def default_name(url: str, scale_name: str) -> str:
    """DATABASE_URL's name with "_load"; the tiny world's apart ("_load_tiny"), so a check
    of the harness never replaces the full dataset."""
    return f"{database_name(url)}_load" + ("" if scale_name == "full" else f"_{scale_name}")


def default_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise DatasetError("The load test runs on PostgreSQL: set DATABASE_URL, e.g. "
                           "DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench")
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.dataset", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="the dataset's database (default: DATABASE_URL's "
                        "name with _load)")
    parser.add_argument("--rebuild", action="store_true", help="build even if one is there")
    parser.add_argument("--scale", choices=["full", "tiny"], default="full")
    args = parser.parse_args(argv)
    url = default_url()
    name = args.database or default_name(url, args.scale)
    result = ensure(url, name, scale_name=args.scale, rebuild=args.rebuild)
    print(json.dumps({k: v for k, v in result.items() if k != "scale"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
