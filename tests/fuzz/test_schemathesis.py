"""Schemathesis against a real gunicorn, once per role: every operation in /api/v1/openapi.json,
every check (`--checks all`), all phases (examples, coverage, fuzzing, stateful), zero failures.

The database is seeded first (tests/fuzz/seed.py) and the real ids are fed to the path parameters
through fuzz dictionaries, so paths with ids reach real objects as well as random ones.

The budget here is small enough for CI; `scripts/fuzz` runs the same test with a bigger one
(FUZZ_MAX_EXAMPLES, FUZZ_MAX_TIME, FUZZ_SEED; see fuzz_settings below).
"""
from __future__ import annotations

import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fuzz.seed import seed
from tests.partners.helpers import basic, create_client_cli
from tests.processes import Processes

# ... and a partner system (医保, 残联, ...) with its OAuth client-credentials token.
ROLES = ["public", "donor", "caseworker", "moderator", "admin", "partner_client"]
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
HOOKS = Path(__file__).with_name("hooks.py")
# seeded ids that only bodies take (tests/fuzz/hooks.py puts them there)
BODY_IDS = {"beneficiary_id": "body_ben_id", "wish_id": "published_wish_id"}


def fuzz_settings() -> dict:
    return {
        # examples per operation and phase; the coverage phase is deterministic and not capped
        "max_examples": int(os.environ.get("FUZZ_MAX_EXAMPLES", "4")),
        # optional wall-time cap per role, in seconds (fuzzing/stateful repeat until it is spent)
        "max_time": os.environ.get("FUZZ_MAX_TIME"),
        "seed": os.environ.get("FUZZ_SEED"),
        "phases": os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful"),
        # more `schemathesis run` options, e.g. "--include-path-regex ledger" to focus a run
        "extra_args": shlex.split(os.environ.get("FUZZ_EXTRA_ARGS", "")),
    }


def server_settings(app_config: dict) -> dict[str, str]:
    """The test app's settings (fake WeChat and WeChat Pay servers, media folder) for gunicorn,
    with production-like WeChat login and rate limits far above what fuzzing sends."""
    from app.config import SETTINGS

    settings = {name: str(value) for name, value in app_config.items()
                if name in SETTINGS and value is not None
                and name not in ("APP_ENV", "DATABASE_URL", "REDIS_URL")}
    # An app id: no `dev:` logins, and the fake WeChat answers a made-up code with 40029 -> 401.
    settings.update(WECHAT_APP_ID="wx-fuzz-app", WECHAT_APP_SECRET="fuzz-secret",
                    WECHAT_TIMEOUT_SECONDS="1", FEED_CACHE_SECONDS="0")
    # Fuzzing sends thousands of requests a minute from one address and user; the limits
    # themselves are tested in tests/api/test_rate_limits.py (429s are documented, and fine here).
    settings.update({name: "1000000/minute" for name in SETTINGS if name.startswith("RATELIMIT_")})
    return settings


def unreachable_operations(app, role: str) -> list[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route `role` may not call (its `@allow` policy)."""
    from miniprogram_api.policy import PUBLIC, access_of

    found = []
    for rule in app.url_map.iter_rules():
        allowed = access_of(app, rule.endpoint)
        if allowed is None or PUBLIC in allowed or role in allowed:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def operations_refusing_valid_input(app) -> list[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every operation whose document describes a 422 of its own
    (miniprogram_api/blueprint.py's refuses_valid_input), not only flask-smorest's generic one."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    return sorted((method.upper(), path) for path, item in doc["paths"].items()
                  for method, op in item.items()
                  if isinstance(op, dict) and "$ref" not in op.get("responses", {}).get("422", {
                      "$ref": "none"}))


def _toml(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string/number/list is valid TOML


def write_config(path: Path, role: str, seeded: dict, settings: dict) -> Path:
    lines = [
        f"generation.max-examples = {settings['max_examples']}",
        "request-timeout = 10.0",
        # NUL and lone surrogates, which the API refuses in any string, are left out of valid
        # data by the document itself: every string a client sends carries a pattern that says so
        # (tests/api/test_openapi.py)
        # One worker thread: with two, hypothesis' ast.parse of filter lambdas in parallel threads
        # hits CPython 3.11's "AST constructor recursion depth mismatch" SystemError
        # (python/cpython#106905) and the run stops with a runtime error.
        "workers = 1",
        f"hooks = {_toml(str(HOOKS))}",
        "",
    ]
    if role == "partner_client":
        lines += ["[auth.openapi.partnerOAuth]", f"bearer = {_toml(seeded['tokens'][role])}", ""]
    elif role != "public":
        lines += ["[auth.openapi.bearerAuth]", f"bearer = {_toml(seeded['tokens'][role])}", ""]
    # The token endpoint's own credentials (HTTP Basic), for every role: it is public.
    client_id, secret = seeded["partner_basic"]
    lines += ["[auth.openapi.partnerBasic]", f"username = {_toml(client_id)}",
              f"password = {_toml(secret)}", ""]
    # Real ids for path parameters, mixed with generated ones (a dictionary entry is used only
    # when it fits the generation mode, so negative cases stay negative).
    for name, values in seeded["ids"].items():
        if values:
            lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}", ""]
    lines.append("[parameters]")
    for name, values in seeded["ids"].items():
        if values and name not in BODY_IDS.values():
            lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    lines += [
        "",
        # WeChat Pay signs its notifications; an unsigned body that fits the schema is correctly
        # refused (401/400), so "valid data is accepted" cannot hold for it. Every other check runs.
        "[[operations]]",
        'include-path = "/api/v1/payments/wechatpay/notify"',
        "checks.positive_data_acceptance.enabled = false",
        "",
    ]
    # A batch of up to 1000 signals of any shape can outgrow the body limit (MAX_JSON_BYTES),
    # which is checked before the schema: a too-long generated batch may meet 413 first.
    lines += ["[[operations]]", 'include-name = "POST /api/v1/signals"',
              "checks.negative_data_rejection.expected-statuses = "
              '["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", '
              '"429", "5xx"]', ""]
    # Operations whose document describes a 422 of their own refuse some schema-valid input, for
    # the reasons it states (a proof for a size the ledger has not reached; a wish for a
    # beneficiary who withdrew consent, which the stateful phase reaches by withdrawing it
    # first): for them this one check takes a 422. Their validation is tested in tests/api and
    # by every negative and coverage case here.
    for method, route in seeded.get("refusing_valid_input", []):
        lines += ["[[operations]]", f"include-name = {_toml(f'{method} {route}')}",
                  "checks.positive_data_acceptance.expected-statuses = "
                  '["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]', ""]
    # Operations this role may not call answer 401/403 before any input is read (the access
    # check runs first), so the coverage phase's hundreds of boundary cases would all test the
    # same refusal there: they run where the role reaches the handler; every other phase (and so
    # the refusal itself, and `ignored_auth`) still runs on every operation.
    for method, route in seeded.get("unreachable", []):
        # One filter, the operation's name: separate include-path and include-method keys each
        # select operations on their own (any GET, any path), which had switched the coverage
        # phase off for every operation of every role.
        lines += ["[[operations]]", f"include-name = {_toml(f'{method} {route}')}",
                  "phases.coverage.enabled = false", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_schemathesis(base_url: str, role: str, seeded: dict, folder: Path,
                     settings: dict | None = None) -> subprocess.CompletedProcess:
    settings = settings or fuzz_settings()
    config = write_config(folder / f"schemathesis-{role}.toml", role, seeded, settings)
    seed_file = folder / "seed.json"
    seed_file.write_text(json.dumps(seeded), encoding="utf-8")
    args = [*SCHEMATHESIS, "--no-color", "--config-file", str(config), "run",
            f"{base_url}/api/v1/openapi.json", "--url", base_url,
            "--checks", "all", "--phases", settings["phases"],
            "--continue-on-failure", "--generation-database", "none",
            "--report", "junit", "--report-junit-path", str(folder / f"junit-{role}.xml")]
    if settings["max_time"]:
        args += ["--max-time", settings["max_time"]]
    if settings["seed"]:
        args += ["--seed", settings["seed"]]
    args += settings["extra_args"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120",
           "FUZZ_SEED_FILE": str(seed_file)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=folder,
                            timeout=3600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu_seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def summary(output: str) -> str:
    """The closing block of Schemathesis' report (its SUMMARY section onwards)."""
    match = re.search(r"^=+ SUMMARY =+$", output, re.M)
    return output[match.start():] if match else output[-3000:]


@pytest.fixture(scope="module")
def fuzz_server(app, app_config, database_url, redis_url, tmp_path_factory):
    """One gunicorn for every role (each test empties the tables and Redis and seeds anew)."""
    folder = tmp_path_factory.mktemp("fuzz-server")
    procs = Processes(database_url, redis_url, folder)
    try:
        yield procs.server(workers=2, threads=4, **server_settings(app_config)), folder
    finally:
        procs.stop_all()


@pytest.mark.parametrize("role", ROLES)
def test_api_conforms_to_its_openapi_document(role, app, actors, fuzz_server, tmp_path):
    base_url, server_folder = fuzz_server
    seeded = seed(actors)
    seeded["partner_basic"] = create_client_cli(app, name="fuzz 医保")
    token = actors.client.post("/api/v1/oauth/token", headers=basic(*seeded["partner_basic"]),
                               data={"grant_type": "client_credentials"})
    seeded["tokens"]["partner_client"] = token.get_json()["access_token"]
    seeded["unreachable"] = unreachable_operations(app, role)
    seeded["refusing_valid_input"] = operations_refusing_valid_input(app)
    started = time.monotonic()
    result = run_schemathesis(base_url, role, seeded, tmp_path)
    took = time.monotonic() - started
    print(f"\n--- schemathesis as {role}: exit {result.returncode} in {took:.1f}s "
          f"(schemathesis CPU {result.cpu_seconds:.1f}s) ---\n"
          + summary(result.stdout))
    server_log = (server_folder / "server.log").read_text(errors="replace")
    assert result.returncode == 0, (
        result.stdout[-20000:] + result.stderr[-3000:]
        + "\n--- server log (tail) ---\n" + server_log[-4000:])
