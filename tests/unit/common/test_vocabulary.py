"""copyloop.common.vocabulary and its enum maps in copyloop.common.protoconv: the plain names
the domains speak agree with the copyloop.v1 enums, in both directions."""

from __future__ import annotations

from copyloop.common import protoconv, vocabulary
from copyloop.v1 import common_pb2


def test_channels_are_the_proto_channels_in_lower_case() -> None:
    proto = {k.removeprefix("CHANNEL_").lower() for k, v in common_pb2.Channel.items() if v}
    assert set(vocabulary.CHANNELS) == proto
    assert len(set(vocabulary.CHANNELS)) == len(vocabulary.CHANNELS)
    assert vocabulary.DEFAULT_CHANNEL in vocabulary.CHANNELS
    assert protoconv.CHANNEL_ENUMS["push"] == common_pb2.CHANNEL_PUSH
    assert protoconv.CHANNEL_NAMES[common_pb2.CHANNEL_EMAIL_SUBJECT] == "email_subject"
    assert 0 not in protoconv.CHANNEL_NAMES  # CHANNEL_UNSPECIFIED has no name


def test_price_bands_are_the_proto_bands_with_unknown_as_empty() -> None:
    assert vocabulary.PRICE_BANDS[0] == ""
    assert protoconv.PRICE_BAND_ENUMS[""] == common_pb2.PRICE_BAND_UNSPECIFIED
    assert protoconv.PRICE_BAND_ENUMS["luxury"] == common_pb2.PRICE_BAND_LUXURY
    assert set(protoconv.PRICE_BAND_ENUMS) == set(vocabulary.PRICE_BANDS)


def test_name_and_enum_maps_invert_each_other() -> None:
    for names, enums in (
        (protoconv.CHANNEL_NAMES, protoconv.CHANNEL_ENUMS),
        (protoconv.PRICE_BAND_NAMES, protoconv.PRICE_BAND_ENUMS),
    ):
        assert {name: value for value, name in names.items()} == enums
        assert len(names) == len(enums)


def test_locale_or_default_keeps_supported_locales_only() -> None:
    assert vocabulary.LOCALES == ("en-US", "zh-CN")
    assert vocabulary.DEFAULT_LOCALE in vocabulary.LOCALES
    assert vocabulary.locale_or_default("zh-CN") == "zh-CN"
    assert vocabulary.locale_or_default("fr-FR") == vocabulary.DEFAULT_LOCALE
    assert vocabulary.locale_or_default("") == vocabulary.DEFAULT_LOCALE


def test_describe_lists_values_for_messages() -> None:
    assert vocabulary.describe(("a",)) == "a"
    assert vocabulary.describe(("a", "b")) == "a or b"
    assert vocabulary.describe(("a", "b", "c")) == "a, b or c"
    assert vocabulary.describe(vocabulary.PRICE_BANDS) == "budget, mid, premium or luxury"
    assert vocabulary.describe(vocabulary.LOCALES) == "en-US or zh-CN"
