//! Sharding over agent replicas: three agents with the same twelve targets and
//! `scrape.shard: {index: i, count: 3}` split them with no overlap and no gap — every target is
//! scraped, and by exactly one agent (each agent marks its scrapes with a parameter of its
//! own, so the targets themselves tell who scraped them).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Agent, Receiver, Target};
use livetranslate_test_support::{eventually_async, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_scrape_each_of_twelve_targets_exactly_once() {
    let dir = TempDir::new("sharding");
    let receiver = Receiver::start(204, vec![]).await;
    let mut targets = Vec::new();
    for _ in 0..12 {
        targets.push(Target::start("lt_up 1\n").await);
    }
    let list: Vec<String> = targets.iter().map(|t| format!("\"{}\"", t.addr)).collect();
    let mut agents = Vec::new();
    for index in 0..3 {
        let config = dir.path().join(format!("agent-{index}.yml"));
        let text = format!(
            "scrape: {{shard: {{index: {index}, count: 3}}}}\n\
             scrape_configs:\n\
             \x20 - job_name: sharded\n\
             \x20   scrape_interval: 200ms\n\
             \x20   params: {{agent: [\"a{index}\"]}}\n\
             \x20   static_configs: [{{targets: [{}]}}]\n\
             remote_write:\n\
             \x20 url: {}\n\
             \x20 queue: {{batch_send_deadline: 200ms}}\n",
            list.join(", "),
            receiver.url()
        );
        if let Err(e) = std::fs::write(&config, text) {
            panic!("{e}");
        }
        agents.push(Agent::start(dir.path(), &["--config", &config.display().to_string()]).await);
    }
    // Every target answered at least a few scrapes.
    let all_scraped = eventually_async(Duration::from_secs(20), || async {
        targets
            .iter()
            .all(|t| t.hits.load(std::sync::atomic::Ordering::Relaxed) >= 3)
    })
    .await;
    // Who scraped whom, from the targets' side.
    let mut scrapers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in &targets {
        let uris = t.uris.lock().map(|u| u.clone()).unwrap_or_default();
        let who: BTreeSet<String> = uris
            .keys()
            .filter_map(|u| u.split("agent=").nth(1).map(str::to_owned))
            .collect();
        scrapers.insert(t.addr.to_string(), who);
    }
    let logs: Vec<String> = agents.iter().map(Agent::log).collect();
    assert!(
        all_scraped,
        "not every target was scraped: {scrapers:#?}\n{}",
        logs.join("\n")
    );
    for (target, who) in &scrapers {
        assert_eq!(who.len(), 1, "{target} scraped by {who:?}");
    }
    let per_agent: BTreeMap<String, usize> =
        scrapers
            .values()
            .flatten()
            .fold(BTreeMap::new(), |mut m, a| {
                *m.entry(a.clone()).or_default() += 1;
                m
            });
    assert_eq!(per_agent.values().sum::<usize>(), 12, "{per_agent:?}");

    // Each agent says the same: its active targets and the ones left to the others.
    let mut active_total = 0.0;
    for (index, agent) in agents.iter().enumerate() {
        let active = agent
            .metric(
                "livetranslate_agent_scrape_targets",
                &[("job", "sharded"), ("state", "active")],
            )
            .await;
        let dropped = agent
            .metric(
                "livetranslate_agent_scrape_targets",
                &[("job", "sharded"), ("state", "dropped")],
            )
            .await;
        assert_eq!(active + dropped, 12.0, "agent {index}");
        assert_eq!(
            active,
            per_agent.get(&format!("a{index}")).copied().unwrap_or(0) as f64,
            "agent {index}"
        );
        active_total += active;
    }
    assert_eq!(active_total, 12.0);
    println!("targets per agent: {per_agent:?}");
}
