//! The ArcGIS token of a run given outside its URLs, where `ps` and shell history cannot see it:
//! `--token-file FILE` (the token alone, or the JSON `generateToken` answers), else the
//! environment variable [`TOKEN_ENV`]. It is sent to the run's ArcGIS services and portal items
//! only (never to another host), to those whose URL carries no `token` of its own, and it is a
//! registered secret: never printed nor written.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Result;

use crate::bail_input;
use crate::secrets;

/// The environment variable holding a token.
pub const TOKEN_ENV: &str = "ARCGIS_TOKEN";

/// The token of this run, once [`load`]ed.
static TOKEN: Mutex<Option<String>> = Mutex::new(None);

/// Reads the run's token from `file` (`--token-file`), else from [`TOKEN_ENV`]; remembers it for
/// the service and portal URLs of the run, and as a secret.
pub fn load(file: Option<&Path>) -> Result<()> {
    let token = match file {
        Some(file) => match std::fs::read_to_string(file) {
            Ok(text) => Some(from_text(&text).ok_or_else(|| {
                crate::error::input_error(format!(
                    "--token-file {} holds no token; write the token alone in it (or the JSON generateToken answered)",
                    file.display()
                ))
            })?),
            Err(err) => bail_input!(
                "--token-file {} cannot be read ({err}); give the file holding the ArcGIS token",
                file.display()
            ),
        },
        None => std::env::var(TOKEN_ENV).ok().and_then(|text| from_text(&text)),
    };
    if let Some(token) = &token {
        secrets::register(token);
    }
    if let Ok(mut current) = TOKEN.lock() {
        *current = token;
    }
    Ok(())
}

/// The run's token, if one was given by file or environment.
pub fn current() -> Option<String> {
    TOKEN.lock().ok()?.clone()
}

/// The token in `text`: the `token` of a JSON object (what `generateToken` answers), else the
/// first non-empty line, trimmed.
fn from_text(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with('{') {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            return value
                .get("token")
                .and_then(|t| t.as_str())
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
        }
    }
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_the_file_alone_or_generate_tokens_answer() {
        assert_eq!(from_text("  abc.DEF-123\n").as_deref(), Some("abc.DEF-123"));
        assert_eq!(from_text("\n\nabc\nnext\n").as_deref(), Some("abc"));
        assert_eq!(
            from_text(r#"{"token":"T0K","expires":1700000000000,"ssl":true}"#).as_deref(),
            Some("T0K")
        );
        assert_eq!(from_text(" \n "), None);
        assert_eq!(from_text(r#"{"error":{"code":400}}"#), None);
    }
}
