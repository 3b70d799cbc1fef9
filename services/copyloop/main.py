"""The main job (`make run`): the whole platform on this machine.

    python -m copyloop.main            # train the demo LLM if missing, start Triton + the four
                                       # services, run the walkthrough, serve until Ctrl-C
    python -m copyloop.main --once     # the same, but exit after the walkthrough
    python -m copyloop.main --serve-only   # start and serve, no walkthrough (CLI `platform start`)
    python -m copyloop.main demo       # repeat the walkthrough against the running platform
    python -m copyloop.main --no-llm   # without Triton: template copy only

While serving, var/platform.json holds the pid, API key and addresses (removed on exit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from copyloop.common.config import parse_api_keys
from copyloop.common.observability import configure_logging
from copyloop.common.server import serve_until_signal
from copyloop.demo.walkthrough import Walkthrough, WalkthroughConfig
from copyloop.platform import (
    Platform,
    PlatformConfig,
    database_urls_from_env,
    describe_database,
    start_platform,
)

if TYPE_CHECKING:
    from copyloop.generation.triton_local import LocalTriton

VAR = Path(os.environ.get("COPYLOOP_VAR_DIR", "var"))
STATE_FILE = VAR / "platform.json"
BASE_PORT = int(os.environ.get("COPYLOOP_BASE_PORT", "50051"))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m copyloop.main",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run", "demo"])
    parser.add_argument("--once", action="store_true", help="exit after the walkthrough")
    parser.add_argument(
        "--serve-only", action="store_true", help="start and serve without the walkthrough"
    )
    parser.add_argument("--no-llm", action="store_true", help="no Triton: template copy only")
    parser.add_argument(
        "--model-dir",
        default=os.environ.get("COPYLOOP_GENERATION_MODEL_DIR", ""),
        help="a Hugging Face causal LM directory (default: the demo model, trained if missing)",
    )
    return parser.parse_args()


def _start_triton(model_dir: str) -> tuple[LocalTriton, str]:
    from copyloop.generation.copywriter.train import DEFAULT_OUT_DIR, train_copywriter
    from copyloop.generation.triton_local import LocalTriton

    if not model_dir:
        model_dir = str(DEFAULT_OUT_DIR.resolve())
        print(
            f"Demo copywriter model: {model_dir} (trained on first run; a small model - "
            "production points COPYLOOP_GENERATION_MODEL_DIR at a real instruction-tuned LLM)"
        )
        train_copywriter(model_dir)
    print("Starting Triton Inference Server (CPU) with deploy/triton/models ...", flush=True)
    triton = LocalTriton(model_dir).start()
    print(f"Triton ready: gRPC {triton.grpc_url}")
    return triton, model_dir


# ---- step: the content-effect model (copy quality) ---------------------------------------
SHARED_DATA = Path(os.environ.get("COPYLOOP_SHARED_DATA", "../shared/data"))


def _content_model_dir() -> str:
    """PredictionService's content-effect model: COPYLOOP_PREDICTION_CONTENT_MODEL_DIR when
    set ("off" = none); else var/models/content_effect, trained here from ../shared/data when
    missing (about 2 minutes on 2 cores the first time, 30 s with the embedding cache);
    without the data, none (copy quality 0.5)."""
    configured = os.environ.get("COPYLOOP_PREDICTION_CONTENT_MODEL_DIR")
    if configured is not None:
        return configured
    from copyloop.prediction.offline.content_effect import data_file, train_command

    out = VAR / "models" / "content_effect"
    if (out / "content_effect.json").is_file():
        print(f"Content-effect model: {out}")
        return str(out)
    if not data_file(SHARED_DATA).is_file():
        print(f"Content-effect model: none ({data_file(SHARED_DATA)} not found; copy quality 0.5)")
        return ""
    print(f"Training the content-effect model from {SHARED_DATA} into {out} ...", flush=True)
    started = time.monotonic()
    try:
        train_command(SHARED_DATA, out, cache=VAR / "cache" / "minilm_embeddings.npz")
    except Exception as exc:  # the platform runs without it (copy quality 0.5)
        print(f"Content-effect model: none (training failed: {exc!r})")
        return ""
    print(f"Content-effect model trained in {time.monotonic() - started:.0f}s")
    return str(out)


async def _serve(args: argparse.Namespace) -> None:
    api_keys = os.environ.get("COPYLOOP_API_KEYS", "demo-key:demo")
    api_key = next(iter(parse_api_keys(api_keys)))
    triton, model_dir = (None, "") if args.no_llm else _start_triton(args.model_dir)
    platform: Platform | None = None
    # Each service's own COPYLOOP_<SERVICE>_DATABASE_URL (PostgreSQL in production), else a
    # SQLite file under var/.
    database_urls = database_urls_from_env()
    for service, url in database_urls.items():
        print(f"{service} database: {describe_database(url)}")
    try:
        content_model_dir = _content_model_dir()
        platform = await start_platform(
            PlatformConfig(
                var_dir=VAR,
                api_keys=api_keys,
                base_port=BASE_PORT,
                metrics=True,
                triton_url=triton.grpc_url if triton else "",
                model_dir=model_dir,
                database_urls=database_urls,
                content_model_dir=content_model_dir,
            )
        )
        addresses = platform.addresses()
        print("Services: " + "  ".join(f"{k} {v}" for k, v in addresses.items()))
        if not args.serve_only:
            walk = Walkthrough(
                addresses,
                api_key,
                WalkthroughConfig(
                    chart_path=VAR / "experiment.png",
                    copywriter_model_dir=model_dir,
                    triton_url=triton.grpc_url if triton else "",
                    weights_root=VAR / "models",
                ),
            )
            try:
                await walk.prepare()
                await walk.warm_up()
                await walk.show_recommendations(walk.contrasting_shoppers())
                await walk.show_recommendations(walk.contrasting_shoppers()[:1], "zh-CN", n=3)
                await walk.show_experiment()
                await walk.show_copywriter_cycle()
            finally:
                await walk.close()
            if args.once:
                return
        pending = STATE_FILE.with_suffix(
            ".tmp"
        )  # written whole, then renamed: readers never see half
        pending.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "api_key": api_key,
                    "addresses": addresses,
                    # What `copyloop copywriter cycle` needs to publish and load a version.
                    "triton_url": triton.grpc_url if triton else "",
                    "model_dir": model_dir,
                }
            )
        )
        pending.replace(STATE_FILE)
        print(
            f"\nServing (API key {api_key}). Repeat the walkthrough: "
            "python -m copyloop.main demo. Ctrl-C to stop.",
            flush=True,
        )
        await serve_until_signal(platform.fusion.server)
    finally:
        STATE_FILE.unlink(missing_ok=True)
        if platform:
            await platform.stop()
        if triton:
            triton.stop()
        print("Stopped.")


async def _demo() -> None:
    if not STATE_FILE.exists():
        print(
            f"no running platform ({STATE_FILE} not found): start it with `make run`",
            file=sys.stderr,
        )
        raise SystemExit(1)
    state = json.loads(STATE_FILE.read_text())
    walk = Walkthrough(
        state["addresses"],
        state["api_key"],
        WalkthroughConfig(warmup_sessions=60, chart_path=VAR / "experiment.png"),
    )
    try:
        await walk.prepare()
        await walk.warm_up()
        await walk.show_recommendations(walk.contrasting_shoppers())
        await walk.show_recommendations(walk.contrasting_shoppers()[:1], "zh-CN", n=3)
        await walk.show_experiment()
    finally:
        await walk.close()


def main() -> None:
    args = _args()
    # SIGTERM during start-up or the walkthrough unwinds like Ctrl-C, so Triton and the services
    # are stopped; once serving, serve_until_signal drains gracefully instead.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    configure_logging(os.environ.get("COPYLOOP_LOG_LEVEL", "ERROR"))
    VAR.mkdir(parents=True, exist_ok=True)
    asyncio.run(_demo() if args.command == "demo" else _serve(args))


if __name__ == "__main__":
    main()
