"""The audit's HTML report: escaping of hostile names, determinism, bounds, and what a real
headless Chromium shows (the DOM it builds, the requests it makes, a screenshot)."""

from __future__ import annotations

import http.server
import random
import re
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from permgen.account.audit_report import MAX_EDGE_LABELS, MAX_NODES, html

ACCOUNT = "1234567890123456"
SCRIPT = "<script>document.title='pwned'</script>"
IMG = '"><img src=x onerror="document.title=\'pwned\'">'


def finding(
    principal: str,
    bucket: str | None,
    kind: str = "irrecoverable-delete",
    severity: str = "critical",
) -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": severity,
        "principal": principal,
        "bucket": bucket,
        "resources": [f"{bucket}/*" if bucket else "*"],
        "path": [principal, "policy p-etl Statement[0]"],
        "witness": {
            "action": "oss:DeleteObject",
            "resource": f"acs:oss:*:{ACCOUNT}:{bucket}/example",
            "context": {},
        },
        "why": "versioning is off, no retention policy, no replication keeps a copy",
        "fix": f"enable versioning on {bucket}",
    }


def sample() -> dict[str, Any]:
    return {
        "account": ACCOUNT,
        "findings": [
            finding("user:etl", "logs-raw"),
            finding("user:etl", "logs-raw", "irrecoverable-overwrite"),
            finding("role:backup-admin", "finance-archive", "version-purge", "high"),
            finding("group:devs", None, "escalation"),
            finding("anonymous", "website", "public-read", "medium"),
            finding("account:9876543210987654", "logs-raw", "cross-account", "high"),
            finding(SCRIPT, "uploads"),
            finding(IMG, "website", severity="low"),
        ],
    }


class Elements(HTMLParser):
    """Tags and text of a document as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        # the document's title is the first <title>; the SVG's are tooltips
        self._in_title = tag == "title" and not any(t == "title" for t, _ in self.tags[:-1])

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title += data


def parse(doc: str) -> Elements:
    p = Elements()
    p.feed(doc)
    p.close()
    return p


# --- the document itself ----------------------------------------------------------------


def test_hostile_names_are_text_not_markup() -> None:
    doc = html(sample())
    p = parse(doc)
    tags = {t for t, _ in p.tags}
    assert "script" not in tags and "img" not in tags
    assert not any(k.startswith("on") for _, attrs in p.tags for k in attrs)
    text = "".join(p.text)
    assert SCRIPT in text and IMG in text  # shown as the names they are
    assert p.title == f"permgen audit: account {ACCOUNT}"


def test_no_external_urls_and_a_csp_forbidding_fetches() -> None:
    doc = html(sample())
    assert "http://" not in doc and "https://" not in doc
    p = parse(doc)
    for _, attrs in p.tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or value.startswith("#"), (key, value)
    csp = [a["content"] for t, a in p.tags if t == "meta" and a.get("http-equiv")]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]


def test_a_url_in_a_name_stays_text() -> None:
    evil = '"><a href="https://evil.example/x">x</a><link rel=stylesheet href=http://e/x>'
    p = parse(html({"account": ACCOUNT, "findings": [finding(evil, "b")]}))
    assert not [t for t, _ in p.tags if t in ("a", "link") and _.get("href", "#")[:1] != "#"]
    assert evil in "".join(p.text)


def test_reordering_and_invisible_characters_are_shown() -> None:
    spoof = "user:admin\u202egpj.exe\u200b\x00"
    doc = html({"account": ACCOUNT, "findings": [finding(spoof, "b")]})
    assert "\u202e" not in doc and "\u200b" not in doc and "\x00" not in doc
    assert "user:admin\\u202egpj.exe\\u200b\\u0000" in doc


def test_deterministic_whatever_the_order_of_findings() -> None:
    report = sample()
    first = html(report)
    shuffled = list(report["findings"])
    random.Random(7).shuffle(shuffled)
    assert html({"account": ACCOUNT, "findings": shuffled}) == first
    assert html(report) == first


def test_summary_counts_and_buckets_worst_first() -> None:
    doc = html(sample())
    assert '<b id="total">8</b> findings' in doc
    counts = dict(re.findall(r'sev-count" [^>]*>(\w+) <b class="n">(\d+)</b>', doc))
    assert counts == {"critical": "4", "high": "2", "medium": "1", "low": "1"}
    kinds = dict(re.findall(r"<tr><td>([a-z-]+)</td><td class=\"n\">(\d+)</td>", doc))
    assert kinds["irrecoverable-delete"] == "3" and kinds["version-purge"] == "1"
    assert kinds["public-write"] == "0"
    sections = re.findall(r'<h3 id="bucket-\d+">.*?</span> (.*?) <small>', doc)
    # critical buckets first (most findings first), then high, then medium/low
    assert sections == ["logs-raw", "(account-wide)", "uploads", "finance-archive", "website"]


def test_a_bucket_named_like_the_account_wide_node_is_not_merged_with_it() -> None:
    doc = html(
        {
            "account": ACCOUNT,
            "findings": [finding("user:a", None), finding("user:b", "(account-wide)")],
        }
    )
    assert len(re.findall(r'<h3 id="bucket-\d+">', doc)) == 2


def test_edges_aggregate_per_pair_and_the_document_stays_bounded() -> None:
    rng = random.Random(1)
    kinds = ["irrecoverable-delete", "version-purge", "public-read", "escalation"]
    sevs = ["critical", "high", "medium", "low"]
    findings = [
        finding(
            f"user:u{rng.randrange(300)}",
            f"bucket-{rng.randrange(120)}",
            rng.choice(kinds),
            rng.choice(sevs),
        )
        for _ in range(5000)
    ]
    doc = html({"account": ACCOUNT, "findings": findings})
    svg = doc[doc.index("<svg") : doc.index("</svg>")]
    paths = svg.count('<path class="edge"')
    drawn_pairs = set()
    for f in findings:
        drawn_pairs.add((f["principal"], f["bucket"]))
    assert paths < len(drawn_pairs)  # folded: far fewer edges than distinct pairs
    assert paths <= (MAX_NODES + 1) ** 2
    assert svg.count('class="elabel"') == MAX_EDGE_LABELS
    assert svg.count('class="nlabel"') == 2 * (MAX_NODES + 1)
    assert "+260 more principals" in svg and "+80 more buckets" in svg
    # every finding is in the table; an edge's count is the sum of its findings
    assert doc.count('<tr class="sev-') == 5000
    edge_counts = [int(n) for n in re.findall(r": (\d+) findings? \(", svg)]
    assert sum(edge_counts) == 5000
    assert len(doc.encode()) < 6_000_000, len(doc.encode())


def test_notes_are_listed_escaped() -> None:
    doc = html({"account": ACCOUNT, "findings": [], "notes": ["b <i>", "a: policy p unreadable"]})
    assert '<ul class="notes"><li>a: policy p unreadable</li><li>b &lt;i&gt;</li></ul>' in doc


def test_no_findings() -> None:
    doc = html({"account": ACCOUNT, "findings": []})
    assert "<svg" not in doc and '<b id="total">0</b> findings' in doc


# --- in a real headless Chromium -----------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "chromium is not installed: the HTML report is tested in a real headless browser; "
            "install it with `apt-get install -y chromium` (.ci/run does)"
        )
    return found


def run_chromium(tmp_path: Path, url: str, *extra: str) -> str:
    argv = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # network off: no host resolves, not even an address, except the local probe's
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'profile'}",
        *extra,
        url,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Probe:
    """A local HTTP server that records every request a page makes to it."""

    def __init__(self) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # a short poll: shutdown() waits for the serving loop to look (the default is 0.5 s)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )


@pytest.fixture
def probe() -> Iterator[Probe]:
    p = Probe()
    p.thread.start()
    try:
        yield p
    finally:
        p.server.shutdown()
        p.server.server_close()


def hostile_report(probe: Probe) -> dict[str, Any]:
    report = sample()
    report["findings"] += [
        finding(f'"><img src="{probe.url}/escaped-img">', "leaks"),
        finding(f"<link rel=stylesheet href={probe.url}/escaped-css>", "leaks"),
        finding(f"<script src={probe.url}/escaped-js></script>", "leaks"),
    ]
    return report


def test_chromium_shows_the_picture_and_runs_nothing(tmp_path: Path, probe: Probe) -> None:
    page = tmp_path / "audit.html"
    page.write_text(html(hostile_report(probe)), encoding="utf-8")
    dom = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    p = parse(dom)
    assert p.title == f"permgen audit: account {ACCOUNT}"  # no injected script ran
    tags = [t for t, _ in p.tags]
    assert "script" not in tags and "img" not in tags and "link" not in tags
    text = "".join(p.text)
    for name in ("user:etl", "role:backup-admin", "group:devs", "anonymous", SCRIPT[:28]):
        assert name in text, name
    for bucket in ("logs-raw", "finance-archive", "(account-wide)", "uploads", "website", "leaks"):
        assert bucket in text, bucket
    # edge labels with their counts, and the summary
    assert "irrecoverable-delete, irrecoverable-overwrite\u00d72" in text.replace(
        " \u00d7", "\u00d7"
    )
    assert "version-purge" in text and "public-read" in text
    assert "11 findings" in text
    assert sum(1 for t, a in p.tags if t == "path" and a.get("class") == "edge") == 10
    assert probe.seen == []  # the page fetched nothing


def test_chromium_probe_detects_a_fetch(tmp_path: Path, probe: Probe) -> None:
    """The control: a page that does fetch is seen by the probe, so an empty probe means
    something."""
    page = tmp_path / "control.html"
    page.write_text(f'<!DOCTYPE html><title>c</title><img src="{probe.url}/control">')
    run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert probe.seen == ["/control"]


def test_chromium_csp_blocks_fetches_even_if_escaping_failed(tmp_path: Path, probe: Probe) -> None:
    doc = html(sample()).replace(
        "<body>",
        f'<body><img id="injected" src="{probe.url}/csp"><script>document.title=\'pwned\'</script>',
        1,
    )
    page = tmp_path / "broken.html"
    page.write_text(doc, encoding="utf-8")
    p = parse(run_chromium(tmp_path, page.as_uri(), "--dump-dom"))
    assert ("img", {"id": "injected", "src": f"{probe.url}/csp"}) in p.tags  # it is there...
    assert probe.seen == []  # ...and fetched nothing
    assert p.title == f"permgen audit: account {ACCOUNT}"  # and the script did not run


def test_chromium_screenshot(tmp_path: Path) -> None:
    page = tmp_path / "audit.html"
    page.write_text(html(sample()), encoding="utf-8")
    shot = tmp_path / "audit.png"
    run_chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1200,1000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 1000)
    assert len(data) > 20_000  # not a blank page
