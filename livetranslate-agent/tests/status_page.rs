//! The status page as an operator meets it: the real agent tails a temporary log directory
//! into the Loki stand-in, scrapes local targets and remote-writes to a local receiver, and
//! headless Chromium (Debian's `chromium`, on loopback only) loads `/`. The assertions read
//! the DOM the browser built: file rows with their paths, states and offsets, target rows
//! up and down, the destinations, and a path and a label value holding `<script>` shown as
//! text. A 1280×800 screenshot is kept as a test artifact (its path is printed). The views
//! the other clients get (text for curl, JSON, 406/400) are checked over plain HTTP.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Agent, Receiver, Target};
use livetranslate_agent::status::format::count;
use livetranslate_test_support::loki::{LokiStandIn, Mode};
use livetranslate_test_support::{
    assert_valid_html, eventually, free_port, http_client, http_get_with, Chromium, TempDir,
};

const BODY: &str = "# TYPE lt_events_total counter\nlt_events_total{kind=\"a\"} 7\n\
                    # TYPE lt_depth gauge\nlt_depth 2\n";

/// What a browser sends for a page.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";

/// A label value that would run if the page did not escape it.
const EVIL_LABEL: &str = "<script>document.body.dataset.pwned='yes'</script>";

/// Appends `n` JSON lines to `path`. Each file's lines start with its own name: files with
/// the same first bytes would look like rotated copies of each other.
fn json_lines(path: &Path, from: u64, n: u64) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(['"', '\\'], "_"))
        .unwrap_or_default();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    for i in from..from + n {
        writeln!(
            f,
            "{{\"file\":\"{name}\",\"timestamp\":\"2026-01-01T00:00:00.{i:06}Z\",\"level\":\"INFO\",\"message\":\"line {i}\"}}"
        )
        .expect("write log");
    }
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The page's JSON view.
fn json(agent: &Agent) -> Option<serde_json::Value> {
    let (code, body) = http_get_with(&agent.url("/?format=json"), &[])?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

fn file_json<'a>(
    snap: &'a serde_json::Value,
    path: &Path,
    state: &str,
) -> Option<&'a serde_json::Value> {
    let path = path.to_str()?;
    snap["logs"]["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"] == path && f["state"] == state)
}

fn destination_json<'a>(snap: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    snap["destinations"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == name)
}

/// One table row of the rendered DOM: its opening tag and the text of each cell.
#[derive(Debug)]
struct Row {
    tag: String,
    cells: Vec<String>,
}

impl Row {
    fn attr(&self, name: &str) -> Option<String> {
        let start = self.tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = self.tag[start..].find('"')?;
        Some(decode(&self.tag[start..start + len]))
    }
}

/// The rows of class `class` (`file`, `target`, `destination`) in Chromium's serialised DOM.
fn rows(dom: &str, class: &str) -> Vec<Row> {
    let mut out = Vec::new();
    let open = "<tr class=\"";
    let mut rest = dom;
    while let Some(i) = rest.find(open) {
        let after = &rest[i..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let Some(row_end) = after.find("</tr>") else {
            break;
        };
        let tag = &after[..=tag_end];
        let classes = tag[open.len()..].split('"').next().unwrap_or("");
        if classes.split(' ').any(|c| c == class) {
            let body = &after[tag_end + 1..row_end];
            let cells = body
                .split("<td")
                .skip(1)
                .map(|cell| text(cell.split_once('>').map_or("", |(_, c)| c)))
                .collect();
            out.push(Row {
                tag: tag.to_owned(),
                cells,
            });
        }
        rest = &after[row_end..];
    }
    out
}

/// The text of an HTML fragment: tags dropped (a space for each but `<b>` and `<wbr>`), entities
/// decoded, spaces squeezed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let Some(end) = rest[i..].find('>') else {
            break;
        };
        let tag = &rest[i + 1..i + end];
        if !matches!(tag, "b" | "/b" | "wbr") {
            out.push(' ');
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    decode(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The table row showing `path` in the state `state`.
fn file_row<'a>(rows: &'a [Row], path: &Path, state: &str) -> &'a Row {
    let p = path.to_str().expect("utf-8 path");
    rows.iter()
        .find(|r| {
            r.cells.first().map(String::as_str) == Some(p)
                && r.attr("data-state").as_deref() == Some(state)
        })
        .unwrap_or_else(|| panic!("no {state} row for {p} in {rows:#?}"))
}

/// Where the screenshot is kept: beside the test binaries, never committed.
fn artifact(name: &str) -> PathBuf {
    livetranslate_test_support::binaries::target_dir()
        .join("test-artifacts")
        .join(name)
}

#[test]
fn an_operator_reads_files_targets_and_destinations_in_a_real_browser() {
    let browser = Chromium::find();
    let dir = TempDir::new("status-page");
    let logs = dir.path().join("logs");
    let other = dir.path().join("other");
    fs::create_dir_all(&logs).expect("logs dir");
    fs::create_dir_all(&other).expect("other dir");
    let app = logs.join("app.log");
    let evil = logs.join("evil<script>&\"quote\".log");
    let rotated = logs.join("rotated.log");
    let trunc = logs.join("trunc.log");
    json_lines(&app, 0, 40);
    json_lines(&evil, 0, 5);
    json_lines(&rotated, 0, 10);
    json_lines(&trunc, 0, 10);
    fs::write(other.join("plain.txt"), "a raw line\nanother one\n").expect("write");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let good = rt.block_on(Target::start(BODY));
    let broken = rt.block_on(Target::start("<script>alert(1)</script>\n"));
    let receiver = rt.block_on(Receiver::start(204, vec![]));
    let dead = format!("127.0.0.1:{}", free_port());
    let loki = LokiStandIn::start();
    loki.set_mode(Mode::Status(500));

    let config = dir.path().join("agent.yml");
    fs::write(
        &config,
        format!(
            "labels:\n  environment: test\n  cluster: browser\n\
             logs:\n  loki_url: {loki}\n  positions_file: {pos}\n  inputs:\n\
             \x20   - paths: [\"{logs}/*.log\"]\n      format: json\n      labels:\n        team: \"{EVIL_LABEL}\"\n\
             \x20   - paths: [\"{other}/*.txt\"]\n      format: raw\n\
             \x20 loki:\n    batch_wait: 100ms\n    batch_size: 65536\n    min_backoff: 50ms\n    max_backoff: 200ms\n    timeout: 2s\n\
             \x20 poll_interval: 20ms\n  sync_period: 100ms\n  rotate_wait: 60s\n\
             scrape_configs:\n\
             \x20 - job_name: services\n    interval: 500ms\n    timeout: 400ms\n    static_configs:\n      - targets: [\"{good}\", \"{dead}\"]\n\
             \x20 - job_name: broken\n    interval: 500ms\n    timeout: 400ms\n    static_configs:\n      - targets: [\"{broken}\"]\n\
             remote_write:\n  url: {rw}\n  queue: {{batch_send_deadline: 200ms}}\n",
            loki = loki.url(),
            pos = dir.path().join("positions.yml").display(),
            logs = logs.display(),
            other = other.display(),
            good = good.addr,
            broken = broken.addr,
            rw = receiver.url(),
        ),
    )
    .expect("config");
    let agent = Agent::spawn(
        dir.path(),
        &["--config", config.to_str().expect("utf-8")],
        "info",
    );
    livetranslate_test_support::wait_http(&agent.url("/ready"), Duration::from_secs(30));

    // Loki refuses everything: the page must say so, and the files lag.
    let failing = eventually(Duration::from_secs(20), || {
        let snap = json(&agent)?;
        let loki = destination_json(&snap, "Loki")?;
        let f = file_json(&snap, &app, "tailing")?;
        (loki["state"] == "failing"
            && f["lag_bytes"].as_u64()? == size(&app)
            && f["read_offset"] == f["size"])
            .then_some(())
    });
    assert!(
        failing.is_some(),
        "Loki failing never showed:\n{}\n{}",
        json(&agent).unwrap_or_default(),
        agent.log()
    );
    let dom = browser.dump_dom(&agent.url("/"));
    let destinations = rows(&dom, "destination");
    let loki_row = destinations
        .iter()
        .find(|r| r.attr("data-name").as_deref() == Some("Loki"))
        .unwrap_or_else(|| panic!("no Loki row: {destinations:#?}"));
    assert_eq!(loki_row.attr("data-state").as_deref(), Some("failing"));
    assert!(
        loki_row.cells[4].contains("500 Internal Server Error: at least 1 live replicas required"),
        "{loki_row:#?}"
    );
    assert!(
        loki_row.cells[4].contains("failed in a row"),
        "{loki_row:#?}"
    );
    let files = rows(&dom, "file");
    let row = file_row(&files, &app, "tailing");
    assert_eq!(
        row.cells[3],
        format!("0 read {}", count(size(&app))),
        "{row:#?}"
    );
    assert!(
        row.cells[5].contains("oldest"),
        "the lag has an age: {row:#?}"
    );
    let failing_shot = artifact("status-page-loki-failing-1280x800.png");
    browser.screenshot(&agent.url("/"), &failing_shot, (1280, 800));

    // Loki recovers; one file is rotated away, one truncated in place.
    loki.set_mode(Mode::Ok);
    let acked = eventually(Duration::from_secs(20), || {
        let snap = json(&agent)?;
        let f = file_json(&snap, &app, "tailing")?;
        (f["acked_offset"].as_u64()? == size(&app)).then_some(())
    });
    assert!(acked.is_some(), "never acknowledged:\n{}", agent.log());
    let trunc_before = size(&trunc);
    fs::rename(&rotated, logs.join("rotated.log.1")).expect("rotate");
    fs::write(&trunc, "").expect("truncate");
    json_lines(&trunc, 100, 3);
    json_lines(&app, 40, 10);
    let settled = eventually(Duration::from_secs(30), || {
        let snap = json(&agent)?;
        let ok = destination_json(&snap, "Loki")?["state"] == "ok"
            && destination_json(&snap, "Remote write")?["state"] == "ok"
            && file_json(&snap, &rotated, "rotated-draining").is_some()
            && file_json(&snap, &trunc, "finished").is_some()
            && file_json(&snap, &trunc, "tailing")?["acked_offset"].as_u64()? == size(&trunc)
            && file_json(&snap, &app, "tailing")?["acked_offset"].as_u64()? == size(&app)
            && file_json(&snap, &evil, "tailing")?["acked_offset"].as_u64()? == size(&evil);
        let targets = snap["targets"].as_array()?;
        let health = |instance: &str| {
            targets
                .iter()
                .find(|t| t["instance"] == instance)
                .map(|t| t["health"].clone())
        };
        let up = health(&good.addr.to_string())? == "up"
            && health(&dead)? == "down"
            && health(&broken.addr.to_string())? == "down";
        (ok && up).then_some(())
    });
    assert!(
        settled.is_some(),
        "the page never settled:\n{}",
        serde_json::to_string_pretty(&json(&agent)).unwrap_or_default()
    );

    let dom = browser.dump_dom(&agent.url("/"));
    // What the browser built, not what a text search of the response would find.
    assert!(dom.starts_with("<!DOCTYPE html>"), "{dom}");
    assert!(
        !dom.contains("<script"),
        "a <script> element was built:\n{dom}"
    );
    assert!(!dom.contains("data-pwned"), "injected script ran:\n{dom}");

    let files = rows(&dom, "file");
    let row = file_row(&files, &app, "tailing");
    assert_eq!(
        row.cells[3],
        count(size(&app)),
        "position = acknowledged offset: {row:#?}"
    );
    assert_eq!(row.cells[4], count(size(&app)), "size: {row:#?}");
    assert_eq!(row.cells[5], "0 B", "no lag: {row:#?}");
    assert!(
        row.cells[2].contains(&format!("team=\"{EVIL_LABEL}\"")),
        "the label value is text: {row:#?}"
    );
    assert!(
        row.cells[2].contains("environment=\"test\"")
            && row.cells[2].contains("cluster=\"browser\""),
        "{row:#?}"
    );
    let row = file_row(&files, &evil, "tailing");
    assert_eq!(row.cells[3], count(size(&evil)), "{row:#?}");
    file_row(&files, &rotated, "rotated-draining");
    let done = file_row(&files, &trunc, "finished");
    assert!(done.cells[1].contains("ago"), "finished when: {done:#?}");
    assert_eq!(
        done.cells[3],
        count(trunc_before),
        "the old generation ends where it was cut: {done:#?}"
    );
    let row = file_row(&files, &trunc, "tailing");
    assert_eq!(
        row.cells[3],
        count(size(&trunc)),
        "the new generation's offset: {row:#?}"
    );
    file_row(&files, &other.join("plain.txt"), "tailing");
    assert!(dom.contains("Input 2"), "both inputs have their table");

    let targets = rows(&dom, "target");
    let target = |instance: &str| {
        targets
            .iter()
            .find(|r| r.cells[2].contains(&format!("instance=\"{instance}\"")))
            .unwrap_or_else(|| panic!("no row for {instance}: {targets:#?}"))
    };
    let up = target(&good.addr.to_string());
    assert_eq!(up.attr("data-health").as_deref(), Some("up"));
    assert!(up.cells[0].starts_with(&good.url("/metrics")), "{up:#?}");
    assert_eq!(up.cells[5], "2", "samples: {up:#?}");
    assert!(
        up.cells[3].ends_with("ago") || up.cells[3] == "just now",
        "{up:#?}"
    );
    let down = target(&dead);
    assert_eq!(down.attr("data-health").as_deref(), Some("down"));
    assert!(down.cells[6].contains("request failed"), "{down:#?}");
    let bad = target(&broken.addr.to_string());
    assert_eq!(bad.attr("data-health").as_deref(), Some("down"));
    assert!(bad.cells[6].contains("malformed exposition"), "{bad:#?}");
    assert!(
        dom.contains("(1/2 up)") && dom.contains("(0/1 up)"),
        "job headers"
    );

    let destinations = rows(&dom, "destination");
    let state = |name: &str| {
        destinations
            .iter()
            .find(|r| r.attr("data-name").as_deref() == Some(name))
            .and_then(|r| r.attr("data-state"))
    };
    assert_eq!(state("Loki").as_deref(), Some("ok"));
    assert_eq!(state("Remote write").as_deref(), Some("ok"));
    let loki_row = destinations
        .iter()
        .find(|r| r.cells[0].starts_with("Loki"))
        .expect("Loki row");
    assert!(loki_row.cells[2].contains(&loki.url()), "{loki_row:#?}");
    assert!(
        loki_row.cells[4].contains("(recovered)"),
        "the last error stays, marked recovered: {loki_row:#?}"
    );

    // The document as served is valid HTML5 with every hostile value in it.
    let (_, html) =
        http_get_with(&agent.url("/"), &[("accept", BROWSER_ACCEPT)]).expect("the HTML view");
    assert_valid_html(&html);

    let shot = artifact("status-page-1280x800.png");
    let dims = browser.screenshot(&agent.url("/"), &shot, (1280, 800));
    assert_eq!(dims, (1280, 800));
    // The whole page too, for a person to read past the first screen.
    let long = artifact("status-page-1280-full.png");
    browser.screenshot(&agent.url("/"), &long, (1280, 2400));
    eprintln!(
        "status page screenshots: {}, {} and {}",
        failing_shot.display(),
        shot.display(),
        long.display()
    );
}

/// A request for `path` with `accept` (none at all when `None`, as a raw HTTP/1.1 request):
/// status, `Content-Type`, `Vary` and body.
fn fetch(port: u16, path: &str, accept: Option<&str>) -> (u16, String, String, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    (
        status,
        header("content-type"),
        header("vary"),
        body.to_owned(),
    )
}

#[test]
fn each_client_gets_its_view_and_curl_keeps_the_text() {
    let dir = TempDir::new("status-views");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let target = rt.block_on(Target::start(BODY));
    let agent = Agent::spawn(
        dir.path(),
        &[
            "--scrape-target",
            &target.url("/metrics"),
            "--scrape-interval",
            "200ms",
        ],
        "warn",
    );
    livetranslate_test_support::wait_http(&agent.url("/ready"), Duration::from_secs(30));
    let scraped = eventually(Duration::from_secs(15), || {
        let (_, _, _, body) = fetch(agent.port, "/", None);
        body.contains("[up]").then_some(body)
    });
    let text = scraped.unwrap_or_else(|| panic!("never scraped:\n{}", agent.log()));

    // No Accept, and curl's `*/*`: the plain text, as it always read.
    assert!(text.starts_with("livetranslate-agent "), "{text}");
    assert!(
        text.contains("\nmetrics: not pushed (no remote-write URL)\n\ntargets: 1\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("url={}", target.url("/metrics"))),
        "{text}"
    );
    for (path, accept) in [
        ("/", Some("*/*")),
        ("/", Some("text/plain")),
        ("/?format=text", Some(BROWSER_ACCEPT)),
        ("/targets", None),
    ] {
        let (status, ctype, vary, body) = fetch(agent.port, path, accept);
        assert_eq!(
            (status, ctype.as_str()),
            (200, "text/plain; charset=utf-8"),
            "{path} {accept:?}"
        );
        assert_eq!(vary, "Accept");
        assert!(
            body.starts_with("livetranslate-agent ") && body.contains("targets: 1"),
            "{body}"
        );
    }

    // Browsers: HTML, valid, with the empty states said in words.
    for (path, accept) in [("/", Some(BROWSER_ACCEPT)), ("/targets?format=html", None)] {
        let (status, ctype, _, body) = fetch(agent.port, path, accept);
        assert_eq!(
            (status, ctype.as_str()),
            (200, "text/html; charset=utf-8"),
            "{path}"
        );
        assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
        assert!(body.contains("Log files are not read"), "{body}");
        assert_valid_html(&body);
    }

    // Programs: JSON, the same snapshot.
    for (path, accept) in [("/", Some("application/json")), ("/?format=json", None)] {
        let (status, ctype, _, body) = fetch(agent.port, path, accept);
        assert_eq!(
            (status, ctype.as_str()),
            (200, "application/json"),
            "{path}"
        );
        let snap: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(snap["targets"][0]["health"], "up", "{body}");
        assert_eq!(snap["targets"][0]["url"], target.url("/metrics"));
        assert_eq!(snap["logs"], serde_json::Value::Null);
        assert_eq!(snap["destinations"][1]["state"], "off", "{body}");
    }

    // Refusals say what would work.
    let (status, _, _, body) = fetch(agent.port, "/", Some("image/png"));
    assert_eq!(status, 406, "{body}");
    assert!(body.contains("?format=html|text|json"), "{body}");
    let (status, _, _, body) = fetch(agent.port, "/?format=xml", None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("format=json"), "{body}");

    // reqwest, as the other tests use it, sends `*/*` too.
    let page = rt.block_on(async {
        http_client()
            .get(agent.url("/"))
            .send()
            .await
            .expect("GET /")
            .text()
            .await
            .expect("body")
    });
    assert!(page.starts_with("livetranslate-agent "), "{page}");
}
