"""Hub search, file listings, draft candidates, error messages and the token store."""

from __future__ import annotations

import socket

import pytest

from core.hub.auth import TokenSource, clear_token, resolve_token, save_token
from core.hub.client import HubClient
from core.hub.drafts import find_hub_drafts, model_family
from core.hub.errors import InvalidTokenError, NetworkError, RateLimitedError, RepoNotFoundError
from core.hub.files import list_gguf_files
from core.hub.quant import parameter_count_from_name, quantization_from_filename
from core.hub.search import search_gguf_repos
from tests.support.fake_hub import FakeHub
from tests.support.memory_keyring import MemoryKeyring

pytest_plugins = ["tests.hub_fixtures"]

GIB = 1 << 30


def add_popular_repos(hub: FakeHub) -> None:
    for index, downloads in enumerate([50, 900, 10, 300, 70]):
        hub.add_repo(f"org/Qwen2.5-{index}B-Instruct-GGUF", {"a.gguf": b"x"}, downloads=downloads)
    not_gguf = hub.add_repo("org/Qwen2.5-7B-Instruct", {"model.safetensors": b"x"}, downloads=5000)
    not_gguf.tags = ["safetensors"]


def test_search_returns_gguf_repos_by_downloads_across_pages(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    add_popular_repos(fake_hub)
    fake_hub.page_size = 2

    hits = search_gguf_repos(hub_client, "qwen2.5", limit=4)

    assert [hit.downloads for hit in hits] == [900, 300, 70, 50]
    assert hits[0].repo_id == "org/Qwen2.5-1B-Instruct-GGUF"
    assert hits[0].parameter_count == 1_000_000_000
    search_requests = [path for _, path, _ in fake_hub.requests if path.startswith("/api/models?")]
    assert len(search_requests) == 2  # followed the Link header once
    assert "filter=gguf" in search_requests[0] and "sort=downloads" in search_requests[0]


def test_file_listing_has_sizes_checksums_quantization_and_fit(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    files = {
        "model-Q4_K_M.gguf": b"4" * 4000,
        "model-Q8_0.gguf": b"8" * 8000,
        "model-F16.gguf": b"f" * 16000,
        "README.md": b"readme",
    }
    fake_hub.add_repo("org/Model-7B-GGUF", files)

    listing = list_gguf_files(hub_client, "org/Model-7B-GGUF", memory_budget_bytes=12000)

    by_name = {file.filename: file for file in listing.files}
    assert set(by_name) == {"model-Q4_K_M.gguf", "model-Q8_0.gguf", "model-F16.gguf"}
    assert by_name["model-Q8_0.gguf"].size == 8000
    assert by_name["model-Q8_0.gguf"].quantization == "Q8_0"
    assert (
        by_name["model-Q4_K_M.gguf"].sha256
        == fake_hub.file("org/Model-7B-GGUF", "model-Q4_K_M.gguf").sha256
    )
    # 80% of 12000 bytes: Q4_K_M (4000) and Q8_0 (8000) fit, F16 does not.
    assert by_name["model-F16.gguf"].fits_memory is False
    assert by_name["model-Q8_0.gguf"].fits_memory is True
    assert listing.recommended is not None
    assert listing.recommended.filename == "model-Q8_0.gguf"
    assert listing.commit == fake_hub.repos["org/Model-7B-GGUF"].sha


@pytest.mark.parametrize(
    ("filename", "label"),
    [
        ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("llama-3.2-1b-instruct-q8_0.gguf", "Q8_0"),
        ("model.IQ2_XXS.gguf", "IQ2_XXS"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("gemma-3-270m-it-BF16.gguf", "BF16"),
        ("Q5_K_S/model-Q5_K_S-00001-of-00002.gguf", "Q5_K_S"),
        ("model.gguf", None),
    ],
)
def test_quantization_label_from_filename(filename: str, label: str | None) -> None:
    assert quantization_from_filename(filename) == label


def test_parameter_count_and_family_from_names() -> None:
    assert parameter_count_from_name("Qwen2.5-0.5B-Instruct") == 500_000_000
    assert parameter_count_from_name("SmolLM2-135M") == 135_000_000
    assert parameter_count_from_name("Mixtral-8x7B-v0.1") == 56_000_000_000
    assert parameter_count_from_name("Qwen2.5-Coder") is None
    family = model_family("bartowski/Llama-3.2-3B-Instruct-GGUF")
    assert (family.family, family.variant) == ("llama-3.2", "instruct")


def test_find_drafts_lists_smaller_models_of_the_same_family(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    for repo_id, downloads in [
        ("org/Qwen2.5-7B-Instruct-GGUF", 100),
        ("org/Qwen2.5-0.5B-Instruct-GGUF", 50),
        ("other/Qwen2.5-1.5B-Instruct-GGUF", 70),
        ("org/Qwen2.5-0.5B-GGUF", 500),
        ("org/Qwen2.5-14B-Instruct-GGUF", 90),
        ("org/Qwen2.5-Coder-0.5B-Instruct-GGUF", 90),
        ("org/Llama-3.2-1B-Instruct-GGUF", 900),
    ]:
        fake_hub.add_repo(repo_id, {"m.gguf": b"x"}, downloads=downloads)

    drafts = find_hub_drafts(hub_client, "org/Qwen2.5-7B-Instruct-GGUF")

    assert [draft.repo_id for draft in drafts] == [
        "org/Qwen2.5-0.5B-Instruct-GGUF",
        "other/Qwen2.5-1.5B-Instruct-GGUF",
        "org/Qwen2.5-0.5B-GGUF",
    ]
    assert drafts[0].same_variant and not drafts[2].same_variant


def test_missing_repo_and_rate_limit_give_clear_errors(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    with pytest.raises(RepoNotFoundError, match="not found"):
        list_gguf_files(hub_client, "nobody/nothing")
    fake_hub.rate_limited = True
    with pytest.raises(RateLimitedError, match="rate-limiting") as caught:
        search_gguf_repos(hub_client, "qwen")
    assert caught.value.retry_after_seconds == 30
    with pytest.raises(RateLimitedError):
        list_gguf_files(hub_client, "nobody/nothing")


def test_no_network_is_reported_without_retrying_for_long() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HubClient(endpoint=f"http://127.0.0.1:{port}", timeout_s=5)
    with pytest.raises(NetworkError, match="cannot reach"):
        search_gguf_repos(client, "qwen")
    with pytest.raises(NetworkError, match="cannot reach"):
        list_gguf_files(client, "org/repo")


def test_token_lives_in_the_keyring_and_hf_token_overrides(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert resolve_token() == (None, TokenSource.NONE)
    save_token("  hf_stored  ")
    assert memory_keyring.secrets == {("specchat", "huggingface-token"): "hf_stored"}
    assert resolve_token() == ("hf_stored", TokenSource.KEYRING)
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert resolve_token() == ("hf_from_env", TokenSource.ENVIRONMENT)
    assert clear_token() is True
    assert clear_token() is False


def test_search_sorts_by_likes_or_recent_update_and_reads_the_licence(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    fake_hub.add_repo(
        "a/Old-GGUF",
        {"a.gguf": b"x"},
        likes=90,
        license="mit",
        last_modified="2025-01-01T00:00:00.000Z",
    )
    fake_hub.add_repo(
        "b/New-GGUF", {"b.gguf": b"x"}, likes=5, last_modified="2026-11-01T00:00:00.000Z"
    )

    by_likes = search_gguf_repos(hub_client, sort="likes")
    by_update = search_gguf_repos(hub_client, sort="updated")

    assert [hit.repo_id for hit in by_likes] == ["a/Old-GGUF", "b/New-GGUF"]
    assert [hit.repo_id for hit in by_update] == ["b/New-GGUF", "a/Old-GGUF"]
    assert (by_likes[0].license, by_likes[0].author) == ("mit", "a")
    assert by_likes[1].license is None
    with pytest.raises(ValueError, match="unknown sort"):
        search_gguf_repos(hub_client, sort="stars")


def test_whoami_accepts_a_valid_token_and_names_a_wrong_one(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    fake_hub.known_tokens.add("hf_good")
    assert HubClient(hub_client.endpoint, "hf_good").whoami() == "tester"
    with pytest.raises(InvalidTokenError, match="does not accept this token"):
        HubClient(hub_client.endpoint, "hf_bad").whoami()
