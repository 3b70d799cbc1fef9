"""ProfileService's use cases, independent of gRPC: the servicer converts messages and calls
these; tests can call them directly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from copyloop.common.db import BlockingRunner, ping
from copyloop.common.read_cache import ReadCache
from copyloop.common.tenancy import current_tenant
from copyloop.profile.catalog import ItemData
from copyloop.profile.profiles import DAY_S, EventIn, ProfileState, ProfileView, view_profile
from copyloop.profile.recall import Candidate, RecallWeights, ScoredCandidate, rank_candidates
from copyloop.profile.segments import label, load_rules
from copyloop.profile.settings import KNOWN_FIGURES, ProfileSettings
from copyloop.profile.store import (
    IngestResult,
    ItemQuery,
    ProfileStore,
    StoredItem,
    WriteResult,
)


@dataclass(frozen=True)
class Profile:
    view: ProfileView
    segments: list[str]


@dataclass(frozen=True)
class Recalled:
    item: StoredItem
    scored: ScoredCandidate


class ProfileDomain:
    def __init__(self, store: ProfileStore, settings: ProfileSettings) -> None:
        self.store = store
        self.settings = settings
        self.half_life_s = settings.half_life_days * DAY_S
        self.bands = settings.bands()
        self.rules = load_rules(settings.segment_rules_path, KNOWN_FIGURES)
        self.recall_weights = RecallWeights(*map(float, settings.recall_weights.split(",")))
        self._runner = BlockingRunner(workers=4, name="profile-store")
        self._pool_cache: dict[
            tuple[str, ItemQuery], tuple[float, list[tuple[StoredItem, float]]]
        ] = {}
        # What every Recommend reads: its candidates and its shopper's profile state.
        ttl = settings.read_cache_s
        self._items: ReadCache[StoredItem | None] | None = ReadCache(ttl) if ttl > 0 else None
        self._states: ReadCache[ProfileState | None] | None = ReadCache(ttl) if ttl > 0 else None

    async def ready(self) -> bool:
        return await self._runner.run(ping, self.store.engine)

    def close(self) -> None:
        self._runner.close()

    async def upsert_items(
        self, items: Sequence[ItemData], idempotency_key: str
    ) -> list[WriteResult]:
        tenant = current_tenant()
        try:
            results = await self._runner.run(
                self.store.upsert_items, tenant, items, idempotency_key
            )
        finally:
            if self._items is not None:
                self._items.drop(*[(tenant, i.item_id) for i in items])
        for key in [k for k in self._pool_cache if k[0] == tenant]:
            self._pool_cache.pop(key, None)
        return results

    async def get_items(self, item_ids: Sequence[str]) -> dict[str, StoredItem]:
        tenant = current_tenant()
        if self._items is None:
            return await self._runner.run(self.store.get_items, tenant, item_ids)
        found: dict[str, StoredItem] = {}
        missing = []
        for item_id in item_ids:
            hit, item = self._items.get((tenant, item_id))
            if not hit:
                missing.append(item_id)
            elif item is not None:
                found[item_id] = item
        if missing:
            generation = self._items.generation()
            fresh = await self._runner.run(self.store.get_items, tenant, missing)
            for item_id in missing:
                if not self._items.put((tenant, item_id), fresh.get(item_id), generation):
                    break  # a catalog write raced this read: keep none of it
            found.update(fresh)
        return found

    async def list_items(self, query: ItemQuery, after: str, limit: int) -> list[StoredItem]:
        return await self._runner.run(self.store.list_items, current_tenant(), query, after, limit)

    async def ingest(self, events: Sequence[tuple[int, EventIn]]) -> IngestResult:
        tenant = current_tenant()
        try:
            return await self._runner.run(self.store.ingest, tenant, events)
        finally:
            if self._states is not None:
                self._states.drop(*{(tenant, event.user_id) for _, event in events})

    async def ingest_stream(
        self, chunks: AsyncIterator[list[tuple[int, EventIn]]], rejected: IngestResult
    ) -> IngestResult:
        """Commits every `ingest_commit_batch` events: a broken stream keeps what was committed,
        and a replay of it counts those as duplicates. While one batch is written (on the
        store's thread) the next is received and parsed here; batches are still written one
        at a time and in order, and a failed write fails the stream with its own error."""
        total = IngestResult()
        total.add(rejected)
        pending: list[tuple[int, EventIn]] = []
        writing: asyncio.Future[IngestResult] | None = None
        try:
            async for chunk in chunks:
                pending.extend(chunk)
                if len(pending) >= self.settings.ingest_commit_batch:
                    if writing is not None:
                        total.add(await asyncio.shield(writing))
                    writing = asyncio.ensure_future(self.ingest(pending))
                    pending = []
            if writing is not None:
                total.add(await asyncio.shield(writing))
                writing = None
            if pending:
                total.add(await self.ingest(pending))
        finally:
            if writing is not None:
                # The stream broke (or the call was cancelled) while a batch was being
                # written: let the write finish (its thread cannot be stopped; the shield
                # keeps a cancellation from abandoning it) so the batch is committed or rolled
                # back before the call ends; the stream's own error is what is raised.
                await asyncio.wait([writing])
                if not writing.cancelled():
                    writing.exception()  # retrieved: the stream's error wins
        return total

    async def get_profile(self, user_id: str, now: float | None = None) -> Profile:
        state = await self._state(current_tenant(), user_id)
        view = view_profile(user_id, state, now or time.time(), self.half_life_s, self.bands)
        return Profile(view, [] if view.cold_start else label(self.rules, view.figures()))

    async def recall(
        self, user_id: str, k: int, query: ItemQuery, now: float | None = None
    ) -> tuple[list[Recalled], bool]:
        tenant = current_tenant()
        now = now or time.time()
        profile = await self.get_profile(user_id, now)
        pool = await self._recall_pool(tenant, query, now)
        recent = profile.view.state.recent_item_ids[:5]
        recent_facts = (
            await self._runner.run(self.store.item_categories, tenant, recent) if recent else []
        )
        by_id = {item.data.item_id: item for item, _ in pool}
        candidates = [
            Candidate(i.data.item_id, i.data.top_category, i.data.leaf_category, i.data.brand, pop)
            for i, pop in pool
        ]
        ranked = rank_candidates(
            profile.view,
            candidates,
            recent_leaf_categories={leaf for leaf, _ in recent_facts if leaf},
            recent_brands={brand for _, brand in recent_facts if brand},
            k=k,
            weights=self.recall_weights,
        )
        return [Recalled(by_id[s.item_id], s) for s in ranked], profile.view.cold_start

    async def _recall_pool(
        self, tenant: str, query: ItemQuery, now: float
    ) -> list[tuple[StoredItem, float]]:
        """The filtered catalog with popularity, cached briefly: recall runs on every
        recommendation, while the catalog and popularity change slowly (an upsert clears it)."""
        key = (tenant, query)
        cached = self._pool_cache.get(key)
        if cached and now - cached[0] < self.settings.recall_cache_s:
            return cached[1]
        pool = await self._runner.run(self.store.recall_pool, tenant, query, now)
        if len(self._pool_cache) > 256:
            self._pool_cache.clear()
        self._pool_cache[key] = (now, pool)
        return pool

    async def _state(self, tenant: str, user_id: str) -> ProfileState | None:
        if self._states is None:
            return await self._runner.run(self.store.get_state, tenant, user_id)
        hit, state = self._states.get((tenant, user_id))
        if hit:
            return state
        generation = self._states.generation()
        state = await self._runner.run(self.store.get_state, tenant, user_id)
        self._states.put((tenant, user_id), state, generation)
        return state

    async def delete_user(self, user_id: str) -> tuple[int, bool]:
        tenant = current_tenant()
        try:
            return await self._runner.run(self.store.delete_user, tenant, user_id)
        finally:
            if self._states is not None:
                self._states.drop((tenant, user_id))
