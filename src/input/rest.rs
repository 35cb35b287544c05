//! The ArcGIS REST API's JSON answers, read alike for every service and portal request: the
//! server's own error message (`{"error": {"code", "message", "details"}}`, with HTTP 200 as
//! ArcGIS answers or with an error status) on one line, a stop request honoured, and what a failed
//! request for pixels was answered ([`explain_read_failure`]), since GDAL only says it failed.

use anyhow::Result;
use serde_json::Value;

use crate::bail_input;
use crate::error::Interrupted;
use crate::input::http::{self, HttpError};

/// Largest JSON answer read (a description, a page of features, the results of a batch of edits).
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// The server's error in an ArcGIS answer, on one line: its message, its details, its code.
pub fn server_error(value: &Value) -> Option<String> {
    let error = value.get("error")?;
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| error.get("description").and_then(Value::as_str))
        .unwrap_or("an error");
    let mut text = message.trim().trim_end_matches('.').to_string();
    let details: Vec<String> = error
        .get("details")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !details.is_empty() && !details.iter().all(|d| d.trim_end_matches('.') == text) {
        text.push_str(&format!(" ({})", details.join("; ").trim_end_matches('.')));
    }
    if let Some(code) = error.get("code").filter(|c| !c.is_null()) {
        text.push_str(&format!(" (code {code})"));
    }
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What to check after an error `code`: the token for 498/499 (invalid, required) and 403.
pub fn advice(code: Option<i64>) -> &'static str {
    match code {
        Some(498 | 499 | 401 | 403) => {
            "check the token (--token-file, ARCGIS_TOKEN or ?token=): it may have expired or lack access"
        }
        _ => "check the URL (and its token, for a secured service)",
    }
}

/// GETs `url`, or POSTs the encoded `form` to it, and reads its JSON answer; `what` names what is
/// asked in messages (`service https://…`). A failed request, an answer that is not JSON and an
/// ArcGIS error are input errors naming it, with the server's own message; a stop request ends it
/// as interrupted.
pub fn request_json(url: &str, form: Option<&str>, what: &str) -> Result<Value> {
    request_json_advised(url, form, what, &|code| advice(code).to_string())
}

/// As [`request_json`], with the advice after an error answer (its code given) said by
/// `advise`.
pub fn request_json_advised(
    url: &str,
    form: Option<&str>,
    what: &str,
    advise: &dyn Fn(Option<i64>) -> String,
) -> Result<Value> {
    let (body, result) = http::exchange(url, form, MAX_JSON_BYTES);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    match result {
        Err(HttpError::Stopped) => return Err(anyhow::Error::new(Interrupted::NothingWritten)),
        Err(err) => match parsed.as_ref().and_then(server_error) {
            Some(message) => bail_input!("{what} answered: {message}; {}", advise(error_code(parsed.as_ref()))),
            None => bail_input!("cannot read {what}: {err}; {}", advice(None)),
        },
        Ok(()) => {}
    }
    let Some(value) = parsed else {
        let start = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        bail_input!(
            "{what} did not answer with JSON (it began {}); give the URL of an ArcGIS REST service (…/rest/services/NAME/ImageServer)",
            crate::messages::quoted(&start)
        );
    };
    if let Some(message) = server_error(&value) {
        bail_input!("{what} answered: {message}; {}", advise(error_code(Some(&value))));
    }
    Ok(value)
}

fn error_code(value: Option<&Value>) -> Option<i64> {
    value?.get("error")?.get("code")?.as_i64()
}

/// A failed read of a service's pixels in words: GDAL's message about one request (which says
/// only that its answer was not an image, with the request's long URL) replaced by what the
/// service answers to that request, on one line. `None` when the message is not about a request
/// GDAL made for pixels.
pub fn explain_read_failure(gdal_message: &str) -> Option<String> {
    let flat = gdal_message.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(start) = flat.find("ReadBlockFromFile (") {
        let url_start = start + "ReadBlockFromFile (".len();
        let url_end = flat[url_start..].rfind(") failed")? + url_start;
        let url = &flat[url_start..url_end];
        let (body, result) = http::exchange(url, None, MAX_JSON_BYTES);
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        return Some(match (parsed.as_ref().and_then(server_error), result) {
            (Some(message), _) => format!("the service answered: {message}"),
            (None, Err(err)) => format!("the service's request failed: {err}"),
            (None, Ok(())) => {
                "the service's answer was not an image GDAL can read (asked again, it answered)".to_string()
            }
        });
    }
    if let Some(start) = flat.find("Unable to download block") {
        // "... URL: <url> HTTP status code: 500, error: <curl's reason>".
        let status = flat[start..].find("HTTP status code").map(|i| &flat[start + i..]);
        return Some(format!(
            "the service's request failed: {}",
            status.unwrap_or("no answer").trim_end_matches('.')
        ));
    }
    None
}

/// Whether a failed request may succeed when asked again: the server answered 429 (too many
/// requests) or 500, 502, 503, 504, or the connection was reset (GDAL's own list).
pub fn is_transient(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["429", "500", "502", "503", "504"].iter().any(|code| {
        lower.contains(&format!("http status code: {code}")) || lower.contains(&format!("http error code : {code}"))
    }) || lower.contains("connection reset")
}

/// Whether a transfer's failure means the server stopped answering or cannot be reached (a
/// stall past the timeout, a connection refused or reset, a name that does not resolve), rather
/// than a refusal of one request.
pub fn is_unreachable(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "operation too slow",
        "timed out",
        "timeout was reached",
        "connection refused",
        "couldn't connect",
        "could not resolve",
        "couldn't resolve",
        "connection reset",
        "empty reply from server",
        "recv failure",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_servers_error_is_one_line_with_its_details_and_code() {
        let answer = json!({"error": {"code": 400, "message": "Unable to complete operation.", "details": ["Invalid where:\n 'x = 1'"]}});
        assert_eq!(
            server_error(&answer).unwrap(),
            "Unable to complete operation (Invalid where: 'x = 1') (code 400)"
        );
        assert_eq!(
            server_error(&json!({"error": {"code": 498, "message": "Invalid token.", "details": ["Invalid token."]}}))
                .unwrap(),
            "Invalid token (code 498)"
        );
        assert_eq!(server_error(&json!({"features": []})), None);
    }

    #[test]
    fn stalls_and_refusals_are_unreachable_servers() {
        assert!(is_unreachable(
            "Operation too slow. Less than 1 bytes/sec transferred the last 60 seconds"
        ));
        assert!(is_unreachable(
            "Failed to connect to 127.0.0.1 port 9: Connection refused"
        ));
        assert!(!is_unreachable("HTTP error code : 404"));
        assert!(is_transient(
            "GDALWMS: Unable to download block 0, 0. URL: x HTTP status code: 503, error: y"
        ));
        assert!(!is_transient(
            "GDALWMS: Unable to download block 0, 0. URL: x HTTP status code: 404, error: y"
        ));
    }
}
