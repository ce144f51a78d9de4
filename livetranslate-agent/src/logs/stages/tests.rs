//! Whole pipelines.

use super::*;
