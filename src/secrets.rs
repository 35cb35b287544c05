//! The run's secrets and the one redaction that keeps them out of everything it shows or
//! writes. A secret is the password of a URL's `user:password@`, the value of a query parameter
//! that carries a credential (`token`, `key`, `apikey`, `password`, `sig`, `X-Amz-Signature`,
//! ... see [`is_secret_param`]), a token given by file or environment, or the value of a GDAL
//! option that holds one (`--config GDAL_HTTP_USERPWD ...`). [`redact`] rewrites every http(s)
//! URL in a text with `***` in place of its secrets (parsed by `url::Url`) and replaces every
//! secret value [`register`]ed so far wherever it appears (a server's error message that quotes
//! the token), so that it serves names (an input shown in a message, an `ImageId`, the report's
//! command line) and free text (GDAL's and servers' messages) alike.

use std::sync::Mutex;

use url::Url;

/// What a secret is replaced by.
pub const MASK: &str = "***";

/// Registered secrets shorter than this are not searched for in free text (they would mask
/// ordinary words); in URLs every secret is masked whatever its length.
const MIN_SCRUBBED_CHARS: usize = 4;

/// Secret values known to this process, longest first.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers `secret` (and its URL-encoded form) so that [`redact`] masks it wherever it
/// appears.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SCRUBBED_CHARS {
        return;
    }
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let Ok(mut secrets) = SECRETS.lock() else {
        return;
    };
    for value in [secret.to_string(), encoded] {
        if !secrets.contains(&value) {
            secrets.push(value);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers the secrets of every URL in `text` (a flag's value): passwords and the values of
/// credential parameters.
pub fn register_in(text: &str) {
    for (start, end) in url_spans(text) {
        let Ok(url) = Url::parse(&text[start..end]) else {
            continue;
        };
        if let Some(password) = url.password() {
            register(password);
            register(&percent_decoded(password));
        }
        for (name, value) in url.query_pairs() {
            if is_secret_param(&name) {
                register(&value);
            }
        }
    }
}

/// Registers the secrets on a command line: those in its URLs, and the value after
/// `--config KEY` when `KEY` names a credential ([`is_secret_option`]).
pub fn register_command_line(args: &[String]) {
    for (i, arg) in args.iter().enumerate() {
        register_in(arg);
        if arg == "--config" {
            if let (Some(key), Some(value)) = (args.get(i + 1), args.get(i + 2)) {
                if is_secret_option(key) {
                    register(value);
                }
            }
        }
    }
}

/// Whether a URL query parameter named `name` carries a credential: tokens, keys, passwords,
/// signatures (ArcGIS `token`, `key`/`apikey`, Azure SAS `sig`, S3 and GCS presigned URLs'
/// `X-Amz-Signature`/`X-Goog-Signature` and credentials, OAuth `access_token`, ...).
pub fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const EXACT: &[&str] = &["key", "sig", "pwd", "pass", "passwd", "auth", "authorization", "code"];
    const PARTS: &[&str] = &[
        "token",
        "secret",
        "password",
        "signature",
        "credential",
        "apikey",
        "api_key",
        "api-key",
    ];
    EXACT.contains(&name.as_str()) || PARTS.iter().any(|p| name.contains(p)) || name.ends_with("key")
}

/// Whether a GDAL configuration option `key` holds a credential (`GDAL_HTTP_USERPWD`,
/// `GDAL_HTTP_HEADERS`, `AWS_SECRET_ACCESS_KEY`, `AZURE_STORAGE_SAS_TOKEN`, ...).
pub fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "USERPWD",
        "HEADERS",
        "ACCESS_KEY",
        "_SAS",
        "API_KEY",
        "BEARER",
    ]
    .iter()
    .any(|p| key.contains(p))
}

/// `text` with every secret masked: in each http(s) URL it holds, the password and the values of
/// credential parameters; anywhere, every registered secret. Text without any is returned as it
/// is, byte for byte.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in url_spans(text) {
        out.push_str(&text[last..start]);
        out.push_str(&redact_url(&text[start..end]));
        last = end;
    }
    out.push_str(&text[last..]);
    let Ok(secrets) = SECRETS.lock() else {
        return out;
    };
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// `url` without its secrets at all (no password, no credential parameters): what identifies
/// the resource whatever token reaches it (a cache key). Text that is not a URL is returned as
/// it is.
pub fn without_secrets(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return url.to_string();
    };
    let secret_query = parsed
        .query()
        .is_some_and(|q| query_items(q).any(|(name, _)| is_secret_param(&name)));
    if parsed.password().is_none() && !secret_query {
        return url.to_string();
    }
    let _ = parsed.set_password(None);
    if let Some(query) = parsed.query().map(str::to_string) {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|item| !item.is_empty() && !is_secret_param(&item_name(item)))
            .collect();
        parsed.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    }
    parsed.into()
}

/// One URL with its password and credential parameters' values masked; unchanged (byte for
/// byte) when it holds none, or does not parse.
fn redact_url(text: &str) -> String {
    let Ok(mut url) = Url::parse(text) else {
        return redact_query_text(text);
    };
    let mut changed = false;
    if url.password().is_some() {
        changed |= url.set_password(Some(MASK)).is_ok();
    }
    if let Some(query) = url.query().map(str::to_string) {
        let masked = mask_query(&query);
        if masked != query {
            url.set_query(Some(&masked));
            changed = true;
        }
    }
    if changed {
        url.into()
    } else {
        text.to_string()
    }
}

/// A raw query string with the values of credential parameters masked, every other byte kept.
fn mask_query(query: &str) -> String {
    query
        .split('&')
        .map(|item| match item.split_once('=') {
            Some((name, _)) if is_secret_param(&item_name(item)) => format!("{name}={MASK}"),
            _ => item.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL that does not parse: its query part masked as text.
fn redact_query_text(text: &str) -> String {
    match text.split_once('?') {
        Some((head, query)) => format!("{head}?{}", mask_query(query)),
        None => text.to_string(),
    }
}

/// The decoded name of a raw `name=value` query item.
fn item_name(item: &str) -> String {
    let name = item.split_once('=').map_or(item, |(n, _)| n);
    url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(n, _)| n.into_owned())
        .unwrap_or_default()
}

/// The decoded `(name, value)` items of a raw query string.
fn query_items(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// `text` with its `%XX` escapes decoded (a `+` stays a `+`).
fn percent_decoded(text: &str) -> String {
    let item = format!("v={}", text.replace('+', "%2B"));
    url::form_urlencoded::parse(item.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The byte ranges of the http(s) URLs in `text`: from the scheme to the first whitespace,
/// quote or angle bracket, without the punctuation that ends a clause after it.
fn url_spans(text: &str) -> Vec<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| lower[from..].find(scheme))
        .min()
    {
        let start = from + found;
        let mut end = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(text.len(), |n| start + n);
        // Punctuation that ends a sentence or a clause after a URL is not part of it.
        while end > start && text[..end].ends_with([':', ';', ',', '.', ')']) {
            end -= 1;
        }
        spans.push((start, end));
        from = end.max(start + 1);
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked_and_nothing_else() {
        assert_eq!(
            redact("https://h/arcgis/rest/services/A/ImageServer?token=abc&f=json"),
            "https://h/arcgis/rest/services/A/ImageServer?token=***&f=json"
        );
        assert_eq!(
            redact("https://h/x?f=json&where=1%3D1"),
            "https://h/x?f=json&where=1%3D1"
        );
        assert_eq!(redact("https://h/x"), "https://h/x");
        assert_eq!(
            redact("/vsicurl/https://h/x.tif?token=s3cret"),
            "/vsicurl/https://h/x.tif?token=***"
        );
        assert_eq!(redact("https://me:pa55@h/x.tif"), "https://me:***@h/x.tif");
        assert_eq!(
            redact("https://b.s3.amazonaws.com/x.tif?X-Amz-Date=1&X-Amz-Signature=ab12&X-Amz-Credential=K%2F1"),
            "https://b.s3.amazonaws.com/x.tif?X-Amz-Date=1&X-Amz-Signature=***&X-Amz-Credential=***"
        );
        assert_eq!(
            redact("https://a.blob.core.windows.net/c/x.tif?sv=2020&sig=Zm9v%3D&se=2030"),
            "https://a.blob.core.windows.net/c/x.tif?sv=2020&sig=***&se=2030"
        );
        assert_eq!(
            redact("cannot open https://h/x?apikey=K1&f=json; and http://u:p@h2/y?Password=q there"),
            "cannot open https://h/x?apikey=***&f=json; and http://u:***@h2/y?Password=*** there"
        );
        assert_eq!(redact("no url here: token=abc"), "no url here: token=abc");
        assert_eq!(
            redact("reading https://h/x?token=abc: failed."),
            "reading https://h/x?token=***: failed."
        );
    }

    #[test]
    fn registered_secrets_are_masked_anywhere() {
        register("Reg1stered-T0ken");
        assert_eq!(
            redact("the server said: invalid token Reg1stered-T0ken (498)"),
            "the server said: invalid token *** (498)"
        );
        register_command_line(&[
            "-r".into(),
            "https://h/x?token=From-The-Url".into(),
            "--config".into(),
            "GDAL_HTTP_USERPWD".into(),
            "me:C0nfig-Secret".into(),
        ]);
        assert_eq!(redact("echo From-The-Url me:C0nfig-Secret"), "echo *** ***");
    }

    #[test]
    fn keys_drop_credentials_only() {
        assert_eq!(
            without_secrets("https://p/sharing/rest/content/items/abc/data?token=T1"),
            "https://p/sharing/rest/content/items/abc/data"
        );
        assert_eq!(without_secrets("https://p/d?a=1&token=T&b=2"), "https://p/d?a=1&b=2");
        assert_eq!(without_secrets("https://u:p@p/d"), "https://u@p/d");
        assert_eq!(without_secrets("https://p/d?a=1"), "https://p/d?a=1");
    }

    #[test]
    fn credential_parameters_are_recognised() {
        for name in [
            "token",
            "TOKEN",
            "key",
            "apikey",
            "api_key",
            "password",
            "sig",
            "X-Amz-Signature",
            "access_token",
            "subscription-key",
        ] {
            assert!(is_secret_param(name), "{name}");
        }
        for name in ["f", "where", "bbox", "outFields", "sv", "se", "X-Amz-Date", "format"] {
            assert!(!is_secret_param(name), "{name}");
        }
    }
}
