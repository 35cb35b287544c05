//! Reports rendered in headless Chromium (Debian's, installed by `scripts/setup.sh --test`) and
//! read back as a DOM.

use std::path::Path;

/// Debian's chromium.
pub fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Debian's chromium is needed for this test: scripts/setup.sh --test installs it (make test runs that)")
}

/// Runs headless Chromium on `page` with `what` (`--screenshot=…` or `--dump-dom`); its stdout.
pub fn headless(page: &Path, what: &str, size: (usize, usize)) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--window-size={},{}", size.0, size.1),
            &format!("--user-data-dir={}", profile.path().display()),
            what,
            &format!("file://{}", page.display()),
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium {what} ran");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page as Chromium parsed it.
pub fn dom(page: &Path) -> scraper::Html {
    scraper::Html::parse_document(&headless(page, "--dump-dom", (1400, 1000)))
}

/// A screenshot of `page` at `width` x `height` CSS pixels.
pub fn screenshot(page: &Path, width: usize, height: usize) -> std::path::PathBuf {
    let shot = page.with_extension("png");
    headless(page, &format!("--screenshot={}", shot.display()), (width, height));
    assert!(shot.exists(), "chromium took a screenshot");
    shot
}

pub fn select<'a>(html: &'a scraper::Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    html.select(&scraper::Selector::parse(css).unwrap()).collect()
}

pub fn text(element: &scraper::ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn select_in<'a>(element: &scraper::ElementRef<'a>, css: &str) -> Vec<scraper::ElementRef<'a>> {
    element.select(&scraper::Selector::parse(css).unwrap()).collect()
}
