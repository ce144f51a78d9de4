//! The log pipeline, in the order a line travels (one concept per file):
//!
//! ```text
//! paths ──► watcher ──► framing ──► decode ──► parse (JSON fast path) ──► labels ──► entry
//!   │         │                        └─────► stages (docker, cri, multiline,  ──┘    │
//!   │         │                                Promtail's pipeline_stages)             ▼
//!   │         └── fingerprint (identity), rotation / truncation    file_server ──► budget ──► pipeline
//!   └── recovery (files rotated while stopped)                                              │
//!        positions file ◄── checkpointer ◄── acknowledged by Loki ◄── loki::client ◄─────────┘
//! ```
//!
//! - [`config`]: `logs:` settings; [`input`]: one input (a `logs.inputs` entry or a
//!   promtail.yml scrape config), compiled: globs, parser, labels, stages.
//! - [`paths`]: the paths provider (globs with `**` and `{a,b}`, excludes, paths that cannot
//!   be tailed).
//! - [`watcher`]: a [`watcher::FileWatcher`] per file owns its handle, offset, framing and
//!   rotation / truncation detection; [`framing`]: bytes → lines; [`fingerprint`]: file
//!   identity.
//! - [`decode`]: line → text (long lines, UTF-8); [`parse`]: the JSON fast path (timestamp,
//!   promoted fields) and `format: syslog` ([`syslog`]: RFC 3164 / RFC 5424); [`stages`]: Promtail's pipeline stages, which also run every input's
//!   `docker` / `cri` format and `multiline` (written once); [`labels`]: stream labels and
//!   their caps; [`metadata`]: labels from where a file sits ([`docker`]: a container's
//!   `config.v2.json`; [`kubernetes`]: kubelet's pod log paths); [`entry`]: the entry type.
//! - [`file_server`]: the reader loop (discovery, file identities across rotations,
//!   [`recovery`] at startup, scheduling, reload, the [`budget`]).
//! - [`pipeline`]: batching, pushing (or printing), acknowledgements, shutdown, reload.
//! - [`checkpointer`]: read and acknowledged offsets, retained positions; [`positions`]: the
//!   positions file (the agent's, or Promtail's taken over).

pub mod budget;
pub mod checkpointer;
pub mod config;
pub mod decode;
pub mod docker;
pub mod entry;
pub mod file_server;
pub mod fingerprint;
pub mod framing;
pub mod input;
pub mod kubernetes;
pub mod labels;
pub mod metadata;
pub mod parse;
pub mod paths;
pub mod pipeline;
pub mod positions;
pub mod recovery;
pub mod stages;
pub mod syslog;
pub mod watcher;

pub use config::{LogsConfig, LogsFile};
pub use entry::{FileId, LogEntry};
pub use input::LogInput;
pub use parse::Format;
