"""The opt-in live profile: off unless PERMGEN_LIVE=1 and both credentials are given, and
then never showing the secret; the credentials never reach other tests' environment."""

from __future__ import annotations

import os

from tests.conftest import live_profile


def test_the_live_profile_is_off_unless_asked_for_with_credentials() -> None:
    off = live_profile(
        {"PERMGEN_LIVE_ACCESS_KEY_ID": "LTAIx", "PERMGEN_LIVE_ACCESS_KEY_SECRET": "s"}
    )
    assert not off.enabled and "PERMGEN_LIVE=1 is not set" in off.reason
    assert not live_profile({"PERMGEN_LIVE": "true"}).enabled  # exactly "1"
    half = live_profile({"PERMGEN_LIVE": "1", "PERMGEN_LIVE_ACCESS_KEY_ID": "LTAIx"})
    assert not half.enabled and "not both set" in half.reason
    on = live_profile(
        {
            "PERMGEN_LIVE": "1",
            "PERMGEN_LIVE_ACCESS_KEY_ID": "LTAIx",
            "PERMGEN_LIVE_ACCESS_KEY_SECRET": "very-secret-value",
        }
    )
    assert on.enabled and on.key is not None and on.endpoint is None
    assert on.key.access_key_secret.reveal() == "very-secret-value"
    assert "very-secret-value" not in repr(on)


def test_no_test_sees_live_settings_in_its_environment() -> None:
    assert not [k for k in os.environ if k.startswith("PERMGEN_LIVE")]
