//! HTTP through GDAL's own client (`cpl_http.h`, libcurl underneath; gdal-sys does not bind it):
//! small documents (service descriptions) into memory, downloads streamed into a file, and form
//! POSTs (edits sent to a feature service), all capped in size. GDAL's settings apply as for
//! every other remote read (`GDAL_HTTP_TIMEOUT`, `GDAL_HTTP_LOW_SPEED_TIME`, `GDAL_HTTP_PROXY`,
//! `GDAL_HTTP_MAX_RETRY`, `CURL_CA_BUNDLE`, ...), except that a POST is never retried by GDAL (it
//! may have been applied). A transfer gives up within about a second of a stop request (a
//! signal): libcurl asks [`keep_going`] at least once a second, bytes or not.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write;

/// `CPLHTTPResult` as declared in `cpl_http.h` (unchanged since GDAL 1.x).
#[repr(C)]
struct CplHttpResult {
    status: c_int,
    content_type: *mut c_char,
    error: *mut c_char,
    data_len: c_int,
    data_alloc: c_int,
    data: *mut u8,
    headers: *mut *mut c_char,
    mime_part_count: c_int,
    mime_parts: *mut c_void,
}

type WriteFn = unsafe extern "C" fn(*mut c_void, usize, usize, *mut c_void) -> usize;

extern "C" {
    fn CPLHTTPEnabled() -> c_int;
    fn CPLHTTPFetchEx(
        url: *const c_char,
        options: *const *const c_char,
        progress: Option<unsafe extern "C" fn(f64, *const c_char, *mut c_void) -> c_int>,
        progress_arg: *mut c_void,
        write: Option<WriteFn>,
        write_arg: *mut c_void,
    ) -> *mut CplHttpResult;
    fn CPLHTTPDestroyResult(result: *mut CplHttpResult);
}

/// Where the body of a response goes, and how much of it may come.
struct Sink<'a> {
    out: &'a mut dyn Write,
    written: u64,
    limit: u64,
    too_large: bool,
    io_error: Option<std::io::Error>,
}

/// libcurl's write callback: copies the bytes into the sink; returning less than it was given
/// stops the transfer (too large, or the sink failed).
unsafe extern "C" fn write_body(buffer: *mut c_void, size: usize, count: usize, arg: *mut c_void) -> usize {
    // SAFETY: `arg` is the `Sink` that `fetch_into` passed, alive for the whole transfer.
    let sink = unsafe { &mut *(arg as *mut Sink) };
    let len = size.saturating_mul(count);
    if sink.written + len as u64 > sink.limit {
        sink.too_large = true;
        return 0;
    }
    // SAFETY: libcurl hands `len` readable bytes at `buffer`.
    let bytes = unsafe { std::slice::from_raw_parts(buffer as *const u8, len) };
    match sink.out.write_all(bytes) {
        Ok(()) => {
            sink.written += len as u64;
            len
        }
        Err(err) => {
            sink.io_error = Some(err);
            0
        }
    }
}

/// libcurl's progress callback (through GDAL): 0 (stop) once a stop was requested.
unsafe extern "C" fn keep_going(_done: f64, _message: *const c_char, _arg: *mut c_void) -> c_int {
    c_int::from(!crate::stop::requested())
}

/// Why a transfer failed, in words for an error line.
#[derive(Debug)]
pub enum HttpError {
    /// A stop was requested (a signal) and the transfer abandoned.
    Stopped,
    /// GDAL was built without libcurl.
    Disabled,
    /// The server or the network failed (HTTP status, connection, truncated body, ...).
    Failed(String),
    /// The body is larger than the limit (bytes).
    TooLarge(u64),
    /// The body could not be stored.
    Io(std::io::Error),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Stopped => f.write_str("stopped by a signal"),
            HttpError::Disabled => f.write_str("this GDAL was built without HTTP support (libcurl)"),
            HttpError::Failed(reason) => f.write_str(reason),
            HttpError::TooLarge(limit) => write!(f, "it is larger than the {} MiB limit", limit >> 20),
            HttpError::Io(err) => write!(f, "it could not be stored: {err}"),
        }
    }
}

/// GETs `url` and writes the body into `out`, stopping past `limit` bytes. Returns the number
/// of bytes written. A response with an HTTP error status, a transfer cut short (fewer bytes than
/// the server announced) or a network failure is an error.
pub fn fetch_into(url: &str, out: &mut dyn Write, limit: u64) -> Result<u64, HttpError> {
    transfer(url, None, out, limit)
}

/// GETs `url`, or with `form` POSTs it (`application/x-www-form-urlencoded`, never retried), and
/// writes the body into `out`. Even a failed request's body is written: servers explain
/// themselves in it.
fn transfer(url: &str, form: Option<&str>, out: &mut dyn Write, limit: u64) -> Result<u64, HttpError> {
    // SAFETY: a query of GDAL's build; no arguments.
    if unsafe { CPLHTTPEnabled() } == 0 {
        return Err(HttpError::Disabled);
    }
    let c_url = CString::new(url).map_err(|_| HttpError::Failed("the URL holds a NUL byte".into()))?;
    let mut sink = Sink {
        out,
        written: 0,
        limit,
        too_large: false,
        io_error: None,
    };
    let post = form
        .map(|f| CString::new(format!("POSTFIELDS={f}")))
        .transpose()
        .map_err(|_| HttpError::Failed("the form holds a NUL byte".into()))?;
    let no_retry = c"MAX_RETRY=0";
    let options: Vec<*const c_char> = match &post {
        Some(post) => vec![post.as_ptr(), no_retry.as_ptr(), std::ptr::null()],
        None => vec![std::ptr::null()],
    };
    // SAFETY: a plain C call; `sink` outlives it and is only used by `write_body` during it;
    // `options` is a NULL-terminated array of strings that outlive the call; `keep_going`
    // reads an atomic only.
    let result = unsafe {
        CPLHTTPFetchEx(
            c_url.as_ptr(),
            options.as_ptr(),
            Some(keep_going),
            std::ptr::null_mut(),
            Some(write_body),
            &mut sink as *mut Sink as *mut c_void,
        )
    };
    let error = if result.is_null() {
        Some(super::last_error())
    } else {
        // SAFETY: GDAL returned a valid result, destroyed right after reading it.
        let r = unsafe { &*result };
        // SAFETY: a non-null `error` is a NUL-terminated string owned by the result, copied
        // before the result is destroyed.
        let message = (!r.error.is_null()).then(|| unsafe { CStr::from_ptr(r.error) }.to_string_lossy().into_owned());
        let status = r.status;
        // SAFETY: the result came from CPLHTTPFetchEx and is destroyed once, nothing of it kept.
        unsafe { CPLHTTPDestroyResult(result) };
        message.or_else(|| (status != 0).then(|| format!("transfer failed (curl error {status})")))
    };
    if crate::stop::requested() {
        return Err(HttpError::Stopped);
    }
    if sink.too_large {
        return Err(HttpError::TooLarge(limit));
    }
    if let Some(err) = sink.io_error.take() {
        return Err(HttpError::Io(err));
    }
    match error {
        Some(message) => Err(HttpError::Failed(message.trim().trim_end_matches('.').to_string())),
        None => Ok(sink.written),
    }
}

/// GETs `url` into memory (at most `limit` bytes).
pub fn fetch(url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    fetch_into(url, &mut body, limit)?;
    Ok(body)
}

/// GETs `url`, or POSTs the encoded `form` to it, into memory (at most `limit` bytes): the body,
/// also of a failed request (an error status's body says why), and whether it failed.
pub fn exchange(url: &str, form: Option<&str>, limit: u64) -> (Vec<u8>, Result<(), HttpError>) {
    let mut body = Vec::new();
    let result = transfer(url, form, &mut body, limit).map(drop);
    (body, result)
}

/// POSTs the encoded `form` to `url` (never retried: it may have been applied) and returns the
/// body (at most `limit` bytes).
pub fn post(url: &str, form: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
    let (body, result) = exchange(url, Some(form), limit);
    result.map(|()| body)
}
