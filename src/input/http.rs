//! Service URLs as they are shown: credentials in them (ArcGIS tokens) redacted. HTTP itself goes
//! through GDAL's client ([`crate::gdal_ffi::http`]).

pub use crate::gdal_ffi::http::{fetch, fetch_into, HttpError};

use url::Url;

/// `name` (a URL, or a GDAL name holding one such as `/vsicurl/https://…`) with the value of
/// every `token` parameter replaced by `***`, for messages and records (ArcGIS tokens are
/// credentials). Names without one are returned as they are.
pub fn redact(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let Some(start) = lower.find("https://").or_else(|| lower.find("http://")) else {
        return name.to_string();
    };
    let Ok(mut url) = Url::parse(&name[start..]) else {
        return name.to_string();
    };
    if !url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("token")) {
        return name.to_string();
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("token") {
                "***".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    format!("{}{url}", &name[..start])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_and_nothing_else() {
        assert_eq!(
            redact("https://h/arcgis/rest/services/A/ImageServer?token=abc&f=json"),
            "https://h/arcgis/rest/services/A/ImageServer?token=***&f=json"
        );
        assert_eq!(redact("https://h/x?f=json"), "https://h/x?f=json");
        assert_eq!(redact("https://h/x"), "https://h/x");
        assert_eq!(
            redact("/vsicurl/https://h/x.tif?token=s3cret"),
            "/vsicurl/https://h/x.tif?token=***"
        );
    }
}
