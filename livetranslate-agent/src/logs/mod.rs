//! The log pipeline, in the order a line travels (one concept per file):
//!
//! ```text
//! paths ──► watcher ──► framing ──► decode (parse, multiline) ──► labels ──► entry
//!   │         │                                                            │
//!   │         └── fingerprint (identity), rotation / truncation            ▼
//!   └── recovery (files rotated while stopped)          file_server ──► budget ──► pipeline
//!                                                                              │
//!        positions file ◄── checkpointer ◄── acknowledged by Loki ◄── loki::client
//! ```
//!
//! - [`config`]: `logs:` settings; [`input`]: one `logs.inputs` entry, compiled.
//! - [`paths`]: the paths provider (globs, excludes).
//! - [`watcher`]: a [`watcher::FileWatcher`] per file owns its handle, offset, framing and
//!   rotation / truncation detection; [`framing`]: bytes → lines; [`fingerprint`]: file
//!   identity.
//! - [`decode`]: line → parsed entry ([`parse`]: formats, [`multiline`]: joining);
//!   [`labels`]: stream labels; [`entry`]: the entry type.
//! - [`file_server`]: the reader loop (discovery, [`recovery`] at startup, scheduling, the
//!   [`budget`]).
//! - [`pipeline`]: batching, pushing (or printing), acknowledgements, shutdown.
//! - [`checkpointer`]: read and acknowledged offsets; [`positions`]: the positions file.

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
