"""CLI: `python -m copyloop.generation.copywriter {train,tiny,finetune}`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .sources import DEFAULT_SHARED_DATA
from .train import DEFAULT_OUT_DIR, TrainConfig, train_copywriter


def _train(args: argparse.Namespace) -> int:
    config = TrainConfig(max_steps=args.steps) if args.steps else TrainConfig()
    shared = None if str(args.shared_data).lower() == "none" else Path(args.shared_data)
    result = train_copywriter(args.out, config, force=args.force, shared_data=shared)
    if result.skipped:
        print(f"up to date: {result.out_dir} (config {result.config_hash}); --force retrains")
    else:
        print(
            f"trained {result.n_parameters / 1e6:.2f}M parameters in {result.seconds:.0f}s, "
            f"final loss {result.final_loss:.3f} -> {result.out_dir}"
        )
    return 0


def _tiny(args: argparse.Namespace) -> int:
    from .tiny import build_tiny_model

    result = build_tiny_model(args.out, force=args.force)
    print(f"tiny model in {result.out_dir} ({result.n_parameters} parameters)")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from .finetune import FinetuneConfig, finetune

    config = FinetuneConfig(
        lora=args.lora,
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr if args.lr is not None else (2e-3 if args.lora else 3e-4),
    )
    result = finetune(args.base, args.csv, args.out, config)
    print(
        f"fine-tuned on {result.n_examples} examples ({'LoRA' if result.lora else 'full'}, "
        f"{result.trainable_parameters} trainable parameters): weighted loss "
        f"{result.loss_before:.3f} -> {result.loss_after:.3f}; saved to {result.out_dir}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m copyloop.generation.copywriter")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the demo copywriter from scratch")
    train.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR)
    train.add_argument("--force", action="store_true", help="retrain even if up to date")
    train.add_argument("--steps", type=int, default=0, help="override the number of steps")
    train.add_argument(
        "--shared-data",
        default=str(DEFAULT_SHARED_DATA),
        help="reference data folder (real products, headlines); 'none' = grammar only",
    )
    train.set_defaults(handler=_train)

    tiny = commands.add_parser("tiny", help="build the tiny test model (seconds)")
    tiny.add_argument("--out", type=Path, required=True)
    tiny.add_argument("--force", action="store_true")
    tiny.set_defaults(handler=_tiny)

    finetune = commands.add_parser("finetune", help="fine-tune a local HF causal LM on a CSV")
    finetune.add_argument("--base", type=Path, required=True, help="local HF model directory")
    finetune.add_argument("--csv", type=Path, required=True, help="item fields, copy, [ctr]")
    finetune.add_argument("--out", type=Path, required=True)
    finetune.add_argument("--lora", action="store_true", help="train LoRA adapters (merged)")
    finetune.add_argument("--steps", type=int, default=200)
    finetune.add_argument("--batch-size", type=int, default=8)
    finetune.add_argument("--lr", type=float, default=None)
    finetune.set_defaults(handler=_finetune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
