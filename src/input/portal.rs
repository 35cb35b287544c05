//! Models on an ArcGIS portal (ArcGIS Online, ArcGIS Enterprise), as Esri's samples give them:
//! the item's URL (`…/sharing/rest/content/items/ID`: its description is asked for, to check that
//! it is a Deep Learning Package, and its data is downloaded), the data's URL
//! (`…/items/ID/data`), or the item ID with `--portal URL`. A URL without a `token` of its own
//! gets the run's token ([`crate::input::token`]), if one was given by file or environment.

use anyhow::Result;
use serde_json::Value;
use url::Url;

use crate::bail_input;
use crate::input::http::redact;
use crate::input::rest;
use crate::input::token;

/// The REST path of portal items, before the item ID.
const ITEMS_PATH: &str = "/sharing/rest/content/items/";

/// Portal item types that hold a model package.
const MODEL_TYPES: &[&str] = &["Deep Learning Package"];

/// Whether `text` is an ArcGIS item ID (32 hexadecimal digits).
pub fn is_item_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where a portal model's package is: the URL to download (its `/data`), with the run's token
/// where the URL has none. `model` is `--model` as given, `portal` is `--portal`. `Ok(None)`:
/// `model` is no portal item (a local file, another URL).
pub fn package_url(model: &str, portal: Option<&str>) -> Result<Option<String>> {
    if is_item_id(model) {
        let Some(portal) = portal else {
            bail_input!(
                "--model {model} is an ArcGIS item ID; give its portal with --portal URL (e.g. https://www.arcgis.com), or the item's URL"
            );
        };
        let item = item_url(portal, model)?;
        return data_url(&item).map(Some);
    }
    if let Some(portal) = portal {
        bail_input!(
            "--portal {} is for a model given by item ID, but --model {} is not one (32 hexadecimal digits); leave --portal out or give the item ID",
            redact(portal),
            redact(model)
        );
    }
    let Some((url, data)) = portal_item(model) else {
        return Ok(None);
    };
    match data {
        true => Ok(Some(with_token(url).into())),
        false => data_url(&url).map(Some),
    }
}

/// The item `id` of the portal at `portal` (`https://www.arcgis.com`, `https://host/portal`,
/// with or without `/sharing/rest`).
fn item_url(portal: &str, id: &str) -> Result<Url> {
    let parsed = Url::parse(portal)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    let Some(mut url) = parsed else {
        bail_input!(
            "--portal {} is not a portal URL; give it as https://www.arcgis.com or https://host/portal",
            redact(portal)
        );
    };
    let base = url.path().trim_end_matches('/').to_string();
    let base = base
        .strip_suffix("/sharing/rest")
        .or_else(|| base.strip_suffix("/sharing"))
        .unwrap_or(&base)
        .to_string();
    url.set_path(&format!("{base}{ITEMS_PATH}{id}"));
    url.set_fragment(None);
    Ok(url)
}

/// `name` as a portal item URL: the item's URL (without `/data`, without `f`) and whether it
/// named the data.
fn portal_item(name: &str) -> Option<(Url, bool)> {
    let mut url = Url::parse(name).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let path = url.path().trim_end_matches('/').to_string();
    let at = path.find(ITEMS_PATH)?;
    let rest = &path[at + ITEMS_PATH.len()..];
    let (id, data) = match rest.split_once('/') {
        Some((id, "data")) => (id, true),
        Some(_) => return None,
        None => (rest, false),
    };
    if id.is_empty() {
        return None;
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("f"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_path(&format!("{}{ITEMS_PATH}{id}", &path[..at]));
    url.set_fragment(None);
    url.set_query(None);
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    if data {
        url.set_path(&format!("{}/data", url.path()));
    }
    Some((url, data))
}

/// `url` with the run's token, when it carries none.
fn with_token(mut url: Url) -> Url {
    if !url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("token")) {
        if let Some(token) = token::current() {
            url.query_pairs_mut().append_pair("token", &token);
        }
    }
    url
}

/// The data URL of the item at `item`, after its description says it is a model package.
fn data_url(item: &Url) -> Result<String> {
    let item = with_token(item.clone());
    let shown = redact(item.as_str());
    let mut described = item.clone();
    described.query_pairs_mut().append_pair("f", "json");
    let description = rest::request_json(described.as_str(), None, &format!("portal item {shown}"))?;
    let kind = description.get("type").and_then(Value::as_str).unwrap_or("");
    if !MODEL_TYPES.iter().any(|t| t.eq_ignore_ascii_case(kind)) {
        let title = description.get("title").and_then(Value::as_str).unwrap_or("untitled");
        bail_input!(
            "portal item {shown} (\"{}\") is a {}, not a Deep Learning Package; give the item of a .dlpk",
            redact(title),
            if kind.is_empty() { "item of no type" } else { kind }
        );
    }
    let mut data = item;
    data.set_path(&format!("{}/data", data.path().trim_end_matches('/')));
    Ok(data.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_urls_and_ids_are_recognised() {
        assert!(is_item_id("0123456789abcdef0123456789ABCDEF"));
        assert!(!is_item_id("model.dlpk"));
        let (url, data) =
            portal_item("https://p.example/portal/sharing/rest/content/items/abc?f=pjson&token=T").unwrap();
        assert_eq!(
            url.as_str(),
            "https://p.example/portal/sharing/rest/content/items/abc?token=T"
        );
        assert!(!data);
        let (url, data) = portal_item("https://p.example/sharing/rest/content/items/abc/data").unwrap();
        assert_eq!(url.as_str(), "https://p.example/sharing/rest/content/items/abc/data");
        assert!(data);
        assert!(portal_item("https://p.example/models/colors.dlpk").is_none());
        assert_eq!(
            item_url("https://www.arcgis.com/sharing/rest/", "abc")
                .unwrap()
                .as_str(),
            "https://www.arcgis.com/sharing/rest/content/items/abc"
        );
        assert_eq!(
            item_url("https://h/portal", "abc").unwrap().as_str(),
            "https://h/portal/sharing/rest/content/items/abc"
        );
    }
}
