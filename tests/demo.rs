//! `scripts/demo`, the README's first command, driven as a newcomer runs it: on free ports,
//! with no Loki or Prometheus configured (so the agent runs in dry-run mode), for about 30 s,
//! then Ctrl-C (SIGINT to the whole process group, as a terminal sends it). Every service
//! must answer its health checks meanwhile, the agent must have shipped lines from every
//! service, and the command must exit 0 leaving no process behind, with the agent's
//! positions saved.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use livetranslate_test_support::{eventually, free_port, http_get, TempDir};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SERVICES: [&str; 3] = ["orchestration", "audio", "translation"];
/// The processes the script starts (one pid file each).
const CHILDREN: [&str; 5] = ["orchestration", "audio", "translation", "agent", "traffic"];

/// The script's process group: SIGKILLed on drop, so a failing test leaves nothing behind.
struct Group {
    child: Child,
    pgid: u32,
    log: std::path::PathBuf,
}

impl Group {
    fn signal(&self, sig: &str) {
        // bash's builtin kill: the script needs bash anyway, procps may be missing.
        let _ = Command::new("bash")
            .args(["-c", &format!("kill {sig} -- -{}", self.pgid)])
            .stderr(Stdio::null())
            .status();
    }

    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Is `pid` a live (not zombie) process?
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s.rsplit_once(')')?.1.split_whitespace().next()?.to_owned();
            Some(state != "Z")
        })
        .unwrap_or(false)
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?;
            let _ppid = fields.next()?;
            let group: u32 = fields.next()?.parse().ok()?;
            (group == pgid && state != "Z").then(|| format!("{pid} {})", head.trim()))
        })
        .collect()
}

fn read_pids(dir: &Path) -> BTreeMap<String, u32> {
    CHILDREN
        .iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.pid"))).ok()?;
            Some(((*name).to_owned(), text.trim().parse().ok()?))
        })
        .collect()
}

/// The ports `scripts/demo` is started on.
struct Ports {
    orch: u16,
    audio: u16,
    translation: u16,
    agent: u16,
}

/// Starts `scripts/demo` in its own process group (like a shell job: Ctrl-C reaches the whole
/// group) with its logs under `logs`, free ports, a 1 s scrape interval, `DEMO_DURATION`
/// `duration` seconds and `LOKI_URL` `loki` (none: a dry run); its output goes to a file in
/// `dir`.
fn start_demo(dir: &Path, logs: &Path, duration: &str, loki: Option<&str>) -> (Group, Ports) {
    let mut ports = HashSet::new();
    let mut port = || loop {
        let p = free_port();
        if ports.insert(p) {
            return p;
        }
    };
    let (orch, audio, translation, agent) = (port(), port(), port(), port());
    let log = dir.join("demo-output.txt");
    let out = std::fs::File::create(&log).expect("output file");
    let mut cmd = Command::new("bash");
    cmd.arg(format!("{ROOT}/scripts/demo"))
        .current_dir(ROOT)
        .env("ORCHESTRATION_PORT", orch.to_string())
        .env("AUDIO_PORT", audio.to_string())
        .env("TRANSLATION_PORT", translation.to_string())
        .env("AGENT_PORT", agent.to_string())
        .env("DEMO_LOG_DIR", logs)
        .env("DEMO_DURATION", duration)
        .env("DEMO_SCRAPE_INTERVAL", "1s")
        .env_remove("LOKI_URL")
        .env_remove("PROMETHEUS_REMOTE_WRITE_URL")
        .env_remove("DEMO_PROMETHEUS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .process_group(0);
    if let Some(url) = loki {
        cmd.env("LOKI_URL", url);
    }
    let child = cmd.spawn().expect("run scripts/demo");
    let pgid = child.id();
    (
        Group { child, pgid, log },
        Ports {
            orch,
            audio,
            translation,
            agent,
        },
    )
}

#[test]
fn demo_runs_the_main_job_and_stops_cleanly_on_ctrl_c() {
    let dir = TempDir::new("demo");
    let logs = dir.path().join("logs");
    // A safety net only: the test interrupts it long before.
    let (
        mut demo,
        Ports {
            orch,
            audio,
            translation,
            agent,
        },
    ) = start_demo(dir.path(), &logs, "600", None);

    // The script builds first (quick when the test build already did it), then starts
    // everything and writes one pid file per child.
    let pid_dir = logs.join("pids");
    let urls: Vec<(&str, String)> = SERVICES
        .iter()
        .zip([orch, audio, translation])
        .map(|(s, p)| (*s, format!("http://127.0.0.1:{p}/api/health")))
        .collect();
    let started = eventually(Duration::from_secs(900), || {
        if let Ok(Some(status)) = demo.child.try_wait() {
            panic!("scripts/demo exited early ({status}):\n{}", demo.output());
        }
        let pids = read_pids(&pid_dir);
        let agent_ready = matches!(
            http_get(&format!("http://127.0.0.1:{agent}/ready")),
            Some((200, _))
        );
        (pids.len() == CHILDREN.len() && agent_ready).then_some(pids)
    });
    let pids = started.unwrap_or_else(|| {
        panic!(
            "scripts/demo did not start everything within 15 minutes:\n{}",
            demo.output()
        )
    });

    // About 30 s of the demo running: every health check answered, by every service.
    let mut answers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let run_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < run_until {
        for (name, url) in &urls {
            let answer = match http_get(url) {
                Some((code, body)) => {
                    let status = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["status"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("{code} {status}")
                }
                None => "no answer".to_owned(),
            };
            answers.entry(name).or_default().push(answer);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    // An answer is a health document (200, or 503 while a critical check fails: a check
    // can time out for a moment on a loaded machine); every service must answer every
    // time, be healthy at some point and healthy (or degraded) at the end.
    for (name, list) in &answers {
        assert!(
            list.iter()
                .all(|a| a.starts_with("200 ") || a == "503 unhealthy"),
            "{name} did not answer every health check: {list:?}\n{}",
            demo.output()
        );
        assert!(
            list.iter().any(|a| a == "200 healthy"),
            "{name} never reported healthy: {list:?}"
        );
        assert!(
            list.last().is_some_and(|a| a.starts_with("200 ")),
            "{name} was not healthy at the end: {list:?}"
        );
    }
    assert!(
        SERVICES.iter().all(|s| answers.contains_key(s)),
        "not every service was checked: {answers:?}"
    );

    // Ctrl-C.
    demo.signal("-INT");
    let status = demo.wait_exit(Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "scripts/demo did not exit within 60 s of SIGINT:\n{}",
            demo.output()
        )
    });
    let output = demo.output();
    assert_eq!(
        status.code(),
        Some(0),
        "scripts/demo exit status after SIGINT: {status}\n{output}"
    );

    // Every child is gone; nothing is left in the process group.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left: Vec<String>;
    loop {
        left = pids
            .iter()
            .filter(|(_, pid)| alive(**pid))
            .map(|(name, pid)| format!("{name} (pid {pid})"))
            .collect();
        left.extend(group_members(demo.pgid));
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        left.is_empty(),
        "processes left after the demo exited: {left:?}\n{output}"
    );

    // The agent (dry run: no Loki configured) shipped lines from every service: what it
    // would send is in its output, one JSON object per entry, with the service label.
    let shipped =
        std::fs::read_to_string(logs.join("agent-dry-run.jsonl")).expect("dry-run output");
    let mut services = BTreeSet::new();
    let mut samples = 0usize;
    for line in shipped.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("agent dry-run line is not JSON ({e}): {line}"));
        if v.get("line").is_some() {
            if let Some(s) = v["labels"]["service"].as_str() {
                services.insert(s.to_owned());
            }
        } else if v.get("name").is_some() {
            samples += 1;
        }
    }
    for s in SERVICES {
        assert!(
            services.contains(s),
            "the agent shipped no log line from {s} (services seen: {services:?})\n{output}"
        );
    }
    assert!(samples > 0, "the agent printed no scraped sample");

    // A dry run reads saved positions but never writes them: a later run that ships
    // must not skip the lines only printed.
    assert!(
        !logs.join("agent-positions.yml").exists(),
        "the dry run wrote the agent's positions file\n{output}"
    );
    assert!(
        output.contains("stopped"),
        "no shutdown message in the output:\n{output}"
    );
}

/// `scripts/demo` with a Loki URL, as the README shows it (`LOKI_URL=… ./scripts/demo`): the
/// agent is the one way lines reach Loki (the services inherit `LOKI_URL` but must not ship
/// directly), so Loki holds exactly the lines the services wrote, each once, and every stream
/// carries the four standard labels, as the library's direct shipping labels them.
#[test]
fn demo_with_a_loki_url_ships_every_line_once_with_the_standard_labels() {
    use livetranslate_test_support::loki::LokiStandIn;
    let loki = LokiStandIn::start();
    let dir = TempDir::new("demo-loki");
    let logs = dir.path().join("logs");
    let (mut demo, _) = start_demo(dir.path(), &logs, "20", Some(&loki.url()));
    // It runs DEMO_DURATION seconds after starting, then stops on its own (the agent last,
    // after reading the services' last lines).
    let status = demo
        .wait_exit(Duration::from_secs(900))
        .unwrap_or_else(|| panic!("scripts/demo did not finish:\n{}", demo.output()));
    assert_eq!(status.code(), Some(0), "{status}\n{}", demo.output());

    let mut written = 0usize;
    for s in SERVICES {
        let text = std::fs::read_to_string(logs.join(format!("{s}.log")))
            .unwrap_or_else(|e| panic!("{s}.log: {e}"));
        let n = text.lines().count();
        assert!(n > 0, "{s} wrote nothing");
        written += n;
    }
    let entries = loki.entries();
    let streams = loki.per_stream();
    let dups = loki.duplicates();
    assert_eq!(
        entries.len(),
        written,
        "Loki entries ≠ lines the services wrote ({} streams: {:?})\n{}",
        streams.len(),
        streams.keys().collect::<Vec<_>>(),
        demo.output()
    );
    assert_eq!(
        dups.lines_in_several_streams, 0,
        "a line stored in two streams"
    );
    let mut services = BTreeSet::new();
    for stream in streams.keys() {
        for label in [
            "service=\"",
            "environment=\"demo\"",
            "version=\"",
            "cluster=\"local\"",
        ] {
            assert!(stream.contains(label), "{stream} lacks {label}");
        }
        assert!(!stream.contains("filename="), "{stream}");
        if let Some(s) = stream
            .split("service=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            services.insert(s.to_owned());
        }
    }
    for s in SERVICES {
        assert!(services.contains(s), "no stream of {s}: {services:?}");
    }
    println!(
        "demo with a Loki URL: {written} lines written by 3 services, {} entries in Loki, {} streams (all with service, environment, version, cluster), 0 stored twice",
        entries.len(),
        streams.len()
    );
}
