"""The TypeScript client (clients/node), built from the .proto files alone, against the live
platform: the real four services in this process, a demo catalog and shopper history loaded,
and node's test runner and the example run as subprocesses while the services keep serving."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog, stream_events
from copyloop.demo.shoppers import generate_events, make_shoppers
from copyloop.platform import Platform, PlatformConfig, start_platform
from copyloop.v1 import profile_pb2_grpc

REPO = Path(__file__).resolve().parents[3]
CLIENT_DIR = REPO / "clients" / "node"
API_KEY = "node-key"
BUILD_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 180.0
MIN_NODE_TESTS = 10  # test/errors.test.ts (3, offline) + test/live.test.ts (7, live)
# What the compiled output depends on; dist/ is stale when any of these is newer.
BUILD_INPUTS = (
    "src",
    "test",
    "examples",
    "scripts",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
)
BUILD_STAMP = CLIENT_DIR / "dist" / "test" / "live.test.js"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed (needs Node.js 20+)"
)


async def run(argv: list[str], env: dict[str, str], timeout_s: float) -> tuple[int, str]:
    """Runs a command without blocking the event loop, so in-process services keep answering."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=CLIENT_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        return -1, output.decode(errors="replace") + f"\n[killed after {timeout_s:.0f}s]"
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def newest_mtime(paths: Iterator[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def build_inputs() -> Iterator[Path]:
    generated = CLIENT_DIR / "src" / "gen"
    for name in BUILD_INPUTS:
        path = CLIENT_DIR / name
        yield path
        if path.is_dir():
            yield from (p for p in path.rglob("*") if not p.is_relative_to(generated))
    yield from (REPO / "protos").rglob("*.proto")


def base_env() -> dict[str, str]:
    return {**os.environ, "COPYLOOP_PYTHON": sys.executable}


@pytest.fixture(scope="module")
async def built_client() -> Path:
    """node_modules from the lockfile and a fresh compile, each only when out of date."""
    npm = shutil.which("npm")
    assert npm, "node is installed but npm is not"
    env = base_env()
    installed = CLIENT_DIR / "node_modules" / ".package-lock.json"
    if (
        not installed.exists()
        or installed.stat().st_mtime < (CLIENT_DIR / "package-lock.json").stat().st_mtime
    ):
        code, output = await run([npm, "ci", "--no-audit", "--no-fund"], env, BUILD_TIMEOUT_S)
        assert code == 0, f"npm ci failed ({code}):\n{output}"
    if not BUILD_STAMP.exists() or BUILD_STAMP.stat().st_mtime < newest_mtime(build_inputs()):
        code, output = await run([npm, "run", "build"], env, BUILD_TIMEOUT_S)
        assert code == 0, f"npm run build failed ({code}):\n{output}"
    return CLIENT_DIR


@pytest.fixture(scope="module")
async def live_platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """The four services with tenant `node`: 48 demo items and 40 shoppers' history."""
    platform = await start_platform(
        PlatformConfig(
            var_dir=tmp_path_factory.mktemp("node-client"),
            api_keys=f"{API_KEY}:node",
            embedder="hashing",
        )
    )
    metadata = (("authorization", f"Bearer {API_KEY}"),)
    try:
        async with grpc.aio.insecure_channel(platform.addresses()["profile"]) as channel:
            profile = profile_pb2_grpc.ProfileServiceStub(channel)
            catalog = generate_catalog(48)
            await load_catalog(profile, catalog, metadata)
            shoppers = make_shoppers(catalog, 40)
            await stream_events(
                profile, generate_events(catalog, shoppers, now=time.time()), metadata
            )
        yield platform
    finally:
        await platform.stop(0)


def live_env(platform: Platform) -> dict[str, str]:
    addresses = platform.addresses()
    return {
        **base_env(),
        "COPYLOOP_FUSION_ADDR": addresses["fusion"],
        "COPYLOOP_PROFILE_ADDR": addresses["profile"],
        "COPYLOOP_GENERATION_ADDR": addresses["generation"],
        "COPYLOOP_API_KEY": API_KEY,
        "COPYLOOP_REQUIRE_LIVE": "1",  # a missing platform must fail, not skip
    }


async def test_node_test_suite_passes_against_live_platform(
    built_client: Path, live_platform: Platform
) -> None:
    node = shutil.which("node")
    assert node
    code, output = await run([node, "--test", "dist/test/"], live_env(live_platform), RUN_TIMEOUT_S)
    assert code == 0, f"node --test failed ({code}):\n{output}"
    # Guard against a vacuous pass: every test ran (the live suite skipped nothing) and passed.
    summary = dict(
        re.findall(r"^# (tests|pass|fail|skipped|cancelled) (\d+)$", output, re.MULTILINE)
    )
    assert summary.get("skipped") == "0" and summary.get("fail") == "0", output
    assert int(summary["pass"]) == int(summary["tests"]) >= MIN_NODE_TESTS, output


async def test_example_recommends_and_reports_outcomes(
    built_client: Path, live_platform: Platform
) -> None:
    node = shutil.which("node")
    assert node
    code, output = await run(
        [node, "dist/examples/recommend.js", "shopper-00002", "3"],
        live_env(live_platform),
        RUN_TIMEOUT_S,
    )
    assert code == 0, f"the example failed ({code}):\n{output}"
    lines = output.splitlines()
    assert lines[0].startswith("request ") and "shopper-00002" in lines[0], output
    assert [line.split(".")[0] for line in lines if line[:2] in ("1.", "2.", "3.")] == [
        "1",
        "2",
        "3",
    ], output
    assert "accepted=2 duplicate=0 rejected=0" in output, output
