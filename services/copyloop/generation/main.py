"""Builds and runs GenerationService: `python -m copyloop.generation.main`."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copyloop.common.db import make_engine, migrate
from copyloop.common.server import RunningServer, ServiceSpec, create_server, run_service
from copyloop.generation import messages
from copyloop.generation.copywriter.phrases import trained_on_this_grammar
from copyloop.generation.domain import GenerationDomain
from copyloop.generation.effects import CopyEffectClient
from copyloop.generation.llm_client import TritonLLMClient
from copyloop.generation.pipeline import PipelineSettings
from copyloop.generation.served import warm_up_in_background
from copyloop.generation.servicer import FULL_NAME, GenerationServicer
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.store import CreativeStore
from copyloop.v1 import generation_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")
LLM_HEALTH_NAME = f"{FULL_NAME}/llm"
log = logging.getLogger("copyloop.generation")


@dataclass
class GenerationService:
    server: RunningServer
    domain: GenerationDomain
    effects: CopyEffectClient

    @property
    def address(self) -> str:
        return self.server.address

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)
        await self.domain.close()
        await self.effects.close()
        self.domain.store.engine.dispose()


def load_tokenizer(model_dir: str) -> tuple[Any, str]:
    """The served model's tokenizer (for its chat template) and a version label derived from
    the model's files, so every variant says which weights wrote it."""
    if not model_dir:
        return None, ""
    from transformers import AutoTokenizer

    path = Path(model_dir)
    digest = hashlib.sha256()
    for f in sorted(path.glob("*.json")):
        digest.update(f.read_bytes())
    return AutoTokenizer.from_pretrained(path), f"{path.name}@{digest.hexdigest()[:12]}"


async def start_generation_service(settings: GenerationSettings) -> GenerationService:
    warm_up_in_background()  # the copy checks' models, off the event loop
    engine = make_engine(settings.database_url)
    migrate(engine, MIGRATIONS, "alembic_version_generation")
    tokenizer, version = load_tokenizer(settings.model_dir)
    llm = (
        TritonLLMClient(
            settings.triton_url, settings.model_name, default_timeout_s=settings.llm_timeout_s
        )
        if settings.triton_url
        else None
    )
    domain = GenerationDomain(
        CreativeStore(engine, settings.pool_cache_ttl_s),
        settings,
        llm,
        tokenizer,
        version,
        PipelineSettings(strict_grammar=trained_on_this_grammar(settings.model_dir)),
    )
    effects = CopyEffectClient(settings.prediction_addr)
    servicer = GenerationServicer(domain, effects)
    spec = ServiceSpec(
        full_name=FULL_NAME,
        register=lambda server: generation_pb2_grpc.add_GenerationServiceServicer_to_server(
            servicer, server
        ),
        readiness=domain.ready,
        sub_checks={LLM_HEALTH_NAME: domain.llm_ready},
    )
    server = await create_server([spec], settings, label="generation")
    # Jobs a shutdown or a crash left unfinished run again from the units not yet done.
    await domain.resume_jobs(messages.variant_record)
    return GenerationService(server, domain, effects)


def main() -> None:
    run_service(GenerationSettings, start_generation_service, "GenerationService")


if __name__ == "__main__":
    main()
