"""The `--serve-only` contract of `python -m copyloop.main`, implemented with the in-process
platform, so the CLI's `platform start/status/stop` can be tested end to end in a real child
process before (and independently of) the main job: write VAR/platform.json once serving,
drain and remove it on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from pathlib import Path

from copyloop.platform import PlatformConfig, start_platform

API_KEYS = "runner-key:runner"


async def serve(var_dir: Path) -> None:
    platform = await start_platform(
        PlatformConfig(var_dir=var_dir, api_keys=API_KEYS, embedder="hashing")
    )
    path = var_dir / "platform.json"
    partial = path.with_suffix(".json.tmp")
    state = {
        "pid": os.getpid(),
        "api_key": "runner-key",
        "addresses": platform.addresses(),
        "triton_url": "",  # the main job's keys for the copywriter cycle (no Triton here)
        "model_dir": "",
    }
    partial.write_text(json.dumps(state))
    partial.replace(path)  # readers never see half a file
    print(f"serving {platform.addresses()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await platform.stop(1)
        path.unlink(missing_ok=True)
        print("stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve-only", action="store_true", required=True)
    parser.parse_args()
    asyncio.run(serve(Path(os.environ.get("COPYLOOP_VAR_DIR", "var"))))


if __name__ == "__main__":
    main()
