//! HTTP as a run uses it: through GDAL's client ([`crate::gdal_ffi::http`], so that GDAL's
//! settings apply to every request alike), with defaults that suit unattended runs
//! ([`apply_unattended_defaults`]), and URLs as they are shown (every secret masked by
//! [`crate::secrets::redact`], the one redaction).

pub use crate::gdal_ffi::http::{exchange, fetch_into, HttpError};
pub use crate::secrets::redact;

/// Seconds without a byte after which a transfer fails (`GDAL_HTTP_LOW_SPEED_TIME`, at
/// `GDAL_HTTP_LOW_SPEED_LIMIT` 1 byte per second).
pub const STALL_SECONDS: u32 = 60;

/// Seconds a connection may take to be made (`GDAL_HTTP_CONNECTTIMEOUT`).
pub const CONNECT_SECONDS: u32 = 30;

/// Retries of a request that failed for a reason that may pass (HTTP 429, 500, 502, 503, 504, a
/// connection reset or timed out; `GDAL_HTTP_MAX_RETRY`).
pub const RETRIES: u32 = 3;

/// Seconds before the first retry, doubled (and a little more) for each next one
/// (`GDAL_HTTP_RETRY_DELAY`).
pub const RETRY_DELAY_SECONDS: u32 = 2;

/// Sets GDAL's HTTP settings to defaults that suit a run nobody watches, each only where neither
/// the environment nor `--config` set it: a stalled connection fails after [`STALL_SECONDS`]
/// without a byte (unless `GDAL_HTTP_TIMEOUT` bounds transfers already), a connection takes at
/// most [`CONNECT_SECONDS`], and failures that may pass are retried [`RETRIES`] times with
/// backoff. GDAL's own defaults wait forever and never retry.
pub fn apply_unattended_defaults() {
    let set = |key: &str| !gdal::config::get_config_option(key, "").unwrap_or_default().is_empty();
    let default = |key: &str, value: String| {
        if !set(key) {
            let _ = gdal::config::set_config_option(key, &value);
        }
    };
    if !set("GDAL_HTTP_TIMEOUT") && !set("GDAL_HTTP_LOW_SPEED_TIME") {
        default("GDAL_HTTP_LOW_SPEED_TIME", STALL_SECONDS.to_string());
        default("GDAL_HTTP_LOW_SPEED_LIMIT", "1".into());
    }
    default("GDAL_HTTP_CONNECTTIMEOUT", CONNECT_SECONDS.to_string());
    default("GDAL_HTTP_MAX_RETRY", RETRIES.to_string());
    default("GDAL_HTTP_RETRY_DELAY", RETRY_DELAY_SECONDS.to_string());
}
