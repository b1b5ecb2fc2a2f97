"""Benchmark: the public endpoints a big campaign hits at once, under 200 concurrent
clients, through the production server setup (gunicorn as `tidings web` runs it, the
same command line), against a bare Django view served by the same server in the same run.

    python bench/run.py web [--size N]     (N requests per endpoint, default 2,000)

A campaign is already sent (its deliveries written as the engine leaves them), so its
links exist: the open pixel, the click redirect, the one-click unsubscribe (POST, RFC
8058), the preference page, and the hosted subscription form (GET and POST). Each
endpoint is driven on its own, then the bare view; the figures are requests/s, p50 and
p99 latency and errors per endpoint. Then the database is read to check that no event
was lost: opens, clicks, unsubscriptions and signups recorded equal the requests made.

The bare view (bench/web_urls.py, served only with bench/web_settings.py) answers "ok"
through the same middleware: the cost of Django itself on this server; a second one does
the same plus one database statement (an UPDATE by primary key), the least any of these
links does. The last line is `web ratio=R`: the requests/s of all endpoints together
(total requests over total time) over the bare view's.

With 200 clients that wait for their answer and send again at once, the latency is the
queue: 200 / (requests per second), 100 ms at 2,000 req/s, whatever the code. So the run
ends with an open-loop phase too: the endpoints mixed, requests arriving at a fixed rate
(half the rate the closed loop reached, as readers of a campaign arrive, whatever the
server answers), whose latency is the server's own rather than the queue's.

The clients are asyncio streams speaking HTTP/1.1 with keep-alive, one connection each:
a client library would spend the CPU the server needs (2 cores are shared between them).
The signup limits per address and per list are raised for the run by their settings (all
clients come from 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The servers' command lines, as `tidings web` and `tidings chat` build them (the module
# imports nothing of Django at its top).
sys.path.insert(0, str(ROOT / "src"))
from tidings.cli import WEB_ENV, _asgi_command, _web_command  # noqa: E402

CLIENTS = 200
TIMEOUT = 30.0
BARE = "/bench/bare/"
FLOOR = "/bench/floor/"
GOAL_RATIO, GOAL_P99_MS = 0.5, 100.0
# What each endpoint must do in the database, at least, whatever the code (the second
# figure, labelled, beside the issue's): reads, then writes in one transaction committed
# before the answer. Opens, clicks and the form's page: none (Redis: the stream, the kept
# page; page views are a HINCRBY). One-click: the contact, then its subscriptions and its
# status. Preference page: the contact (with its account), its subscriptions, its open
# requests (personal: never from a shared cache). Form POST: the form, its lists, the
# address's contact, the suppression list; then the contact, its subscriptions and its
# proof of consent.
NECESSARY: dict[str, tuple[int, int]] = {
    "open pixel": (0, 0),
    "click redirect": (0, 0),
    "one-click unsubscribe (POST)": (1, 2),
    "preference page": (3, 0),
    "hosted form (GET)": (0, 0),
    "hosted form (POST)": (4, 3),
}


def work_path(reads: int, writes: int) -> str:
    return BARE if (reads, writes) == (0, 0) else f"/bench/work/{reads}/{writes}/"


# Requests per endpoint for the cost per request (spare contacts beyond the load's).
COST_SAMPLES = 50
# The open-loop phase: requests arrive at a fixed rate whatever the answers (as a
# campaign's readers do), all endpoints mixed, this many per endpoint, at this share of
# the rate the closed loop reached just before (a server half busy).
AT_RATE, LOAD_SHARE = 300, 0.5


# --- the server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, env: dict[str, str], *, asgi: bool = False) -> subprocess.Popen[bytes]:
    """The server with the command line `tidings web` uses (gunicorn), or `tidings chat`
    (uvicorn, ASGI: `asgi`), from tidings.cli, on loopback."""
    command = _asgi_command if asgi else _web_command
    server = subprocess.Popen(
        command("127.0.0.1", port),
        env={**env, **WEB_ENV} if asgi else env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=open(Path(env["TIDINGS_DATA_DIR"]) / "server.log", "ab"),  # noqa: SIM115
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("the server stopped at its start: see server.log in the data directory")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    sys.exit("the server did not listen within 60 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- the clients ----------------------------------------------------------------------


def request_bytes(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tidings-bench\r\n"
    if method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return (head + headers + "\r\n").encode() + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the connection stays open."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, chunked, keep = 0, False, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep = False
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep


async def drive(
    port: int, requests: list[bytes], expected: set[int], clients: int = CLIENTS
) -> dict:
    """Send the requests over `clients` keep-alive connections at once; latencies in ms."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    failed: dict[str, int] = {}
    queue = iter(requests)

    async def client() -> None:
        reader = writer = None
        for raw in queue:
            t = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                writer.write(raw)
                status, keep = await asyncio.wait_for(_response(reader), TIMEOUT)
                latencies.append((time.perf_counter() - t) * 1000)
                if status not in expected:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                    failed["all"] = failed.get("all", 0) + 1
                if not keep:
                    writer.close()
                    reader = writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                failed["all"] = failed.get("all", 0) + 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    return {
        "requests": len(requests),
        "seconds": elapsed,
        "rps": len(requests) / elapsed,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "errors": errors,
        "failed": failed,
    }


async def drive_at_rate(
    port: int, rate: float, requests: list[tuple[str, bytes]], expected: set[int]
) -> dict:
    """Start the requests at `rate` per second whatever the answers, over at most CLIENTS
    connections; a latency counts from the request's due time (waiting for a free
    connection included). A connection the server closed while idle (gunicorn's
    keep-alive is 2 s) is opened again, as any HTTP client does; failures are counted
    per endpoint."""
    idle: asyncio.Queue[Any] = asyncio.Queue()
    for _ in range(CLIENTS):
        idle.put_nowait(None)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    failed: dict[str, int] = {}

    async def send(conn: Any, raw: bytes) -> tuple[Any, int]:
        if conn is None:
            conn = await asyncio.open_connection("127.0.0.1", port)
        conn[1].write(raw)
        status, keep = await asyncio.wait_for(_response(conn[0]), TIMEOUT)
        if not keep:
            conn[1].close()
            conn = None
        return conn, status

    async def one(kind: str, raw: bytes, due: float) -> None:
        conn = await idle.get()
        try:
            try:
                conn, status = await send(conn, raw)
            except (ConnectionError, asyncio.IncompleteReadError):
                if conn is None:
                    raise
                conn[1].close()
                conn, status = await send(None, raw)  # closed while idle: once more
            latencies.append((time.perf_counter() - due) * 1000)
            if status not in expected:
                errors[str(status)] = errors.get(str(status), 0) + 1
                failed[kind] = failed.get(kind, 0) + 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            failed[kind] = failed.get(kind, 0) + 1
            if conn is not None:
                conn[1].close()
            conn = None
        finally:
            idle.put_nowait(conn)

    start = time.perf_counter()
    tasks = []
    for i, (kind, raw) in enumerate(requests):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(kind, raw, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    latencies.sort()
    while not idle.empty():
        conn = idle.get_nowait()
        if conn is not None:
            conn[1].close()
    return {
        "requests": len(requests),
        "seconds": elapsed,
        "rps": len(requests) / elapsed,
        "p50": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0,
        "errors": errors,
        "failed": failed,
    }


def plan(paths: dict, start: int, n: int) -> list[tuple[str, list[bytes], set[int]]]:
    """n requests per endpoint; the per-contact links from the start-th contact on."""
    end = start + n
    form_body = [
        urllib.parse.urlencode(
            {"email": f"new{i}@example.org", "name": f"New {i}", "consent": "on"}
        ).encode()
        for i in range(start, end)
    ]
    urlencoded = "Content-Type: application/x-www-form-urlencoded\r\n"
    return [
        ("open pixel", [request_bytes("GET", p) for p in paths["open"][start:end]], {200}),
        ("click redirect", [request_bytes("GET", p) for p in paths["click"][start:end]], {302}),
        (
            "one-click unsubscribe (POST)",
            [
                request_bytes("POST", p, b"List-Unsubscribe=One-Click", urlencoded)
                for p in paths["unsubscribe"][start:end]
            ],
            {200},
        ),
        (
            "preference page",
            [request_bytes("GET", p) for p in paths["preferences"][start:end]],
            {200},
        ),
        ("hosted form (GET)", [request_bytes("GET", paths["form"])] * n, {200}),
        (
            "hosted form (POST)",
            [request_bytes("POST", paths["form"], b, urlencoded) for b in form_body],
            {200, 302},
        ),
    ]


def mixed(paths: dict, start: int, n: int) -> tuple[list[tuple[str, bytes]], set[int]]:
    """The endpoints' requests interleaved, as a campaign's readers send them."""
    parts = plan(paths, start, n)
    labelled = [[(name, r) for r in requests] for name, requests, _ in parts]
    return [r for group in zip(*labelled, strict=True) for r in group], {200, 302}


def _child(what: str, *args: str, env: dict[str, str], stdin: str = "") -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE / "web_child.py"), what, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        input=stdin,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(size: int | None) -> None:
    n = size or 2_000
    data_dir = tempfile.mkdtemp(prefix="tidings-bench-web-")
    env = {
        **os.environ,
        # Secrets are generated there once: the set-up's tokens and the server agree.
        "TIDINGS_DATA_DIR": data_dir,
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tidings_bench"
        ),
        "DJANGO_SETTINGS_MODULE": "web_settings",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
        "TIDINGS_SIGNUP_PER_IP_HOUR": str(10 * n),
        "TIDINGS_SIGNUP_PER_LIST_HOUR": str(10 * n),
    }
    if "bench" not in env["DATABASE_URL"].rsplit("/", 1)[-1]:
        sys.exit("BENCH_DATABASE_URL must name a database for benchmarks")
    # The cost probe's one-click and preference page take contacts of their own (a page
    # of a contact who left everything reads less).
    paths = _child("setup", str(n + AT_RATE + 2 * (COST_SAMPLES + 2)), env=env)
    port = free_port()
    load_before = os.getloadavg()[0]
    server = start_server(port, env)
    try:
        # One round of each to warm the workers (imports, connections, templates).
        warm = [request_bytes("GET", BARE), request_bytes("GET", paths["form"])] * 50
        warmed = asyncio.run(drive(port, warm, {200}, clients=20))
        warm_form, warm_failed = len(warm) // 2, sum(warmed["failed"].values())
        results = []
        for name, requests, expected in plan(paths, 0, n):
            results.append((name, asyncio.run(drive(port, requests, expected))))
        bare = asyncio.run(drive(port, [request_bytes("GET", BARE)] * n, {200}))
        floor = asyncio.run(drive(port, [request_bytes("GET", FLOOR)] * n, {200}))
        same_work = {(0, 0): bare}
        for needed in sorted(set(NECESSARY.values()) - {(0, 0)}):
            requests = [request_bytes("GET", work_path(*needed))] * n
            same_work[needed] = asyncio.run(drive(port, requests, {200}))
        together = sum(r["requests"] for _, r in results) / sum(r["seconds"] for _, r in results)
        rate = max(5.0, LOAD_SHARE * together)
        at_rate = asyncio.run(drive_at_rate(port, rate, *mixed(paths, n, AT_RATE)))
    finally:
        stop_server(server)
    load_after = os.getloadavg()[0]
    workers = os.environ.get("TIDINGS_WEB_WORKERS", "2")
    threads = os.environ.get("TIDINGS_WEB_THREADS", "4")
    print(
        f"{CLIENTS} clients, {n:,} requests per endpoint, gunicorn as `tidings web` runs it "
        f"({workers} workers x {threads} threads); load average "
        f"{load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores shared with other jobs"
    )
    print(f"{'endpoint':<30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  errors")
    floors = [
        (f"bare view + {r} reads, {w} writes", same_work[(r, w)])
        for r, w in sorted(same_work)
        if (r, w) != (0, 0)
    ]
    shown = [*results, ("bare Django view", bare), ("bare view + 1 statement", floor), *floors]
    for name, r in shown:
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        print(f"{name:<30} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f}  {errors}")
    errors = ", ".join(f"{k}: {v}" for k, v in at_rate["errors"].items()) or "0"
    print(
        f"open loop, all endpoints mixed, {rate:.0f} requests/s arriving whatever the answers "
        f"({LOAD_SHARE:.0%} of the rate above; up to {CLIENTS} connections): "
        f"{at_rate['rps']:.0f} req/s served, p50 "
        f"{at_rate['p50']:.1f} ms, p99 {at_rate['p99']:.1f} ms, errors {errors}"
    )
    # Opens, clicks and unsubscriptions' counts queued in the stream are written by the
    # worker's task: run here until the stream is empty, and timed on its own.
    drained = _child("drain", env=env)
    if drained["queued"] or drained["handled"]:
        print(
            f"stream drained after the run: {drained['handled']:,} entries written in "
            f"{drained['seconds']:.2f} s ({drained['cpu'] / max(1, drained['handled']) * 1e6:.0f}"
            f" µs CPU (Python) per entry), {drained['left']} left"
        )
    else:
        print("no stream (events written in the requests)")
    counts = _child(
        "recorded", str(paths["campaign"]), str(paths["account"]), paths["form"], env=env
    )
    # After the count of events: the cost probe records some of its own.
    cost = _child("costs", str(n + AT_RATE), env=env, stdin=json.dumps(paths))
    print("one request, in process (Django's test client), load-independent:")
    for name, c in cost.items():
        print(f"  {name:<30} {c['queries']:>3} statements  {c['cpu_ms']:>6.2f} ms CPU (Python)")
    # Requests answered as expected: a request that failed may or may not have been
    # recorded, and is counted as an error above.
    failed = {name: sum(r["failed"].values()) for name, r in results}
    for name, n_failed in at_rate["failed"].items():
        failed[name] = failed.get(name, 0) + n_failed
    m = n + AT_RATE

    def answered(name: str) -> int:
        return m - failed.get(name, 0)

    made = {
        "open": answered("open pixel"),
        "click": answered("click redirect"),
        "unsubscribe": answered("one-click unsubscribe (POST)"),
        "unsubscribe_counted": answered("one-click unsubscribe (POST)"),
        "form_post": answered("hosted form (POST)"),
        # Page views: the preference pages and the form's pages answered (the warm-up's
        # form pages too), once the views counted in Redis are written.
        "page_views_preferences": answered("preference page"),
        "page_views_form": answered("hosted form (GET)") + warm_form - warm_failed,
    }
    lost = {k: (counts[k], made[k]) for k in made if counts[k] != made[k]}
    print(
        "events recorded: "
        + ", ".join(f"{k} {counts[k]:,}/{made[k]:,}" for k in made)
        + (f"; LOST OR EXTRA: {lost}" if lost else "; none lost")
    )
    total = sum(r["requests"] for _, r in results)
    rps = total / sum(r["seconds"] for _, r in results)
    ratio = rps / bare["rps"]
    worst = max(r["p99"] for _, r in results)
    errors = sum(sum(r["errors"].values()) for _, r in results)
    print(
        f"endpoints together {rps:.0f} req/s, bare view {bare['rps']:.0f} req/s; goal: ratio "
        f">= {GOAL_RATIO} (is {ratio:.2f}), p99 < {GOAL_P99_MS:.0f} ms (worst {worst:.0f} ms), "
        f"zero errors (is {errors}), none lost (is {'yes' if not lost else 'no'})"
    )
    # 200 clients that each send again as soon as answered always fill the queue: a p99
    # there is the queue's wait (Little's law: 200 / rate), which no page writing even
    # one statement escapes; the bare views doing each endpoint's statements show it in
    # the same run. What a campaign's readers meet is the open loop's.
    worst_floor = max(r["p99"] for _, r in [("", floor), *floors])
    print(
        f"p99 under {CLIENTS} closed-loop clients is their queue: the bare views doing one "
        f"statement or an endpoint's necessary statements reach {worst_floor:.0f} ms; "
        f"open loop at {rate:.0f} req/s: p99 {at_rate['p99']:.1f} ms (goal < {GOAL_P99_MS:.0f})"
    )
    print(
        f"against the bare view plus one database statement ({floor['rps']:.0f} req/s, the "
        f"least a link that records something must do): ratio {rps / floor['rps']:.2f}"
    )
    # The second figure: each endpoint against a bare view that does the endpoint's
    # necessary statements (NECESSARY), served the same way in the same run; together as
    # the first figure is (all requests over the time they took, over all requests over
    # the time the same work took bare). Not the figure, which stays last.
    print("each endpoint against a bare view doing its necessary statements (reads, writes):")
    for name, r in results:
        needed = same_work[NECESSARY[name]]
        print(
            f"  {name:<30} {NECESSARY[name]}  {r['rps']:>6.0f} / {needed['rps']:>6.0f} req/s "
            f"= {r['rps'] / needed['rps']:.2f}"
        )
    same = sum(same_work[NECESSARY[name]]["seconds"] for name, _ in results)
    print(
        f"against the same necessary work (second figure, not the issue's): ratio "
        f"{same / sum(r['seconds'] for _, r in results):.2f}"
    )
    # The most any code could reach on the issue's ratio here: the endpoints' necessary
    # statements alone, served bare (no middleware of its own, no template, no ORM),
    # against the bare view.
    done = sum(same_work[NECESSARY[name]]["requests"] for name, _ in results)
    print(
        f"the necessary statements alone, served bare, against the bare view: ratio "
        f"{done / same / bare['rps']:.2f} (the most any page doing them could reach here)"
    )
    print(f"web ratio={ratio:.2f}")


BENCHMARKS = {"web": main}

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
