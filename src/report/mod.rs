//! The demos' reports: `results.json`, a `report.md` a person can read on its own, PNG charts.

pub mod charts;
pub mod g2p;
pub mod speech;
pub mod summarize;
pub mod topics;
pub mod vision;

pub const RESULTS_FILE: &str = "results.json";
pub const REPORT_FILE: &str = "report.md";
