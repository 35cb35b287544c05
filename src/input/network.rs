//! What reading remote rasters cost: GDAL's own network statistics (`/vsicurl/`, `/vsis3/`, ...),
//! turned on for the run and read back at its end as the number of HTTP requests and the bytes
//! fetched, for `--summary-json`.

use crate::gdal_ffi::network;
use serde::Serialize;

/// HTTP requests made and bytes downloaded through GDAL's virtual file systems.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetworkTotals {
    /// Requests of any method (GET, HEAD, ...).
    pub requests: u64,
    /// Bytes downloaded.
    pub bytes: u64,
}

/// Turns GDAL's network statistics on (before any remote file is opened) and resets them.
pub fn enable() {
    gdal::config::set_config_option("CPL_VSIL_NETWORK_STATS_ENABLED", "YES").ok();
    network::reset();
}

/// The totals so far: every method GDAL reports, added.
pub fn totals() -> NetworkTotals {
    match network::report_json() {
        Some(text) => parse(&text),
        None => NetworkTotals::default(),
    }
}

/// Adds up the `methods` of GDAL's statistics report.
fn parse(text: &str) -> NetworkTotals {
    let Ok(report) = serde_json::from_str::<serde_json::Value>(text) else {
        return NetworkTotals::default();
    };
    let mut totals = NetworkTotals::default();
    if let Some(methods) = report.get("methods").and_then(|m| m.as_object()) {
        for stats in methods.values() {
            totals.requests += stats.get("count").and_then(|v| v.as_u64()).unwrap_or(0);
            totals.bytes += stats.get("downloaded_bytes").and_then(|v| v.as_u64()).unwrap_or(0);
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_every_method() {
        let report = r#"{"methods":{"GET":{"count":3,"downloaded_bytes":16384},"HEAD":{"count":1}},
            "handlers":{"vsicurl":{"methods":{"GET":{"count":3,"downloaded_bytes":16384}}}}}"#;
        assert_eq!(
            parse(report),
            NetworkTotals {
                requests: 4,
                bytes: 16384
            }
        );
        assert_eq!(parse("{}"), NetworkTotals::default());
    }
}
