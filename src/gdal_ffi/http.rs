//! HTTP through GDAL's own client (`cpl_http.h`, libcurl underneath; gdal-sys does not bind it):
//! small documents (service descriptions) into memory, downloads streamed into a file, and form
//! POSTs (edits sent to a feature service), all capped in size, each given up within a tenth of a
//! second of a stop request (a signal). GDAL's settings apply as for
//! every other remote read (`GDAL_HTTP_TIMEOUT`, `GDAL_HTTP_LOW_SPEED_TIME`, `GDAL_HTTP_PROXY`,
//! `GDAL_HTTP_MAX_RETRY`, `CURL_CA_BUNDLE`, ...), except that a POST is never retried by GDAL (it
//! may have been applied).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write;
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::time::Duration;

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

/// Where the body of a response goes (to the thread that asked for it), and how much of it may
/// come.
struct Sink {
    chunks: SyncSender<Vec<u8>>,
    written: u64,
    limit: u64,
    too_large: bool,
    gone: bool,
}

/// libcurl's write callback: sends the bytes to the asking thread; returning less than it was
/// given stops the transfer (too large, or nobody waits for it any more).
unsafe extern "C" fn write_body(buffer: *mut c_void, size: usize, count: usize, arg: *mut c_void) -> usize {
    // SAFETY: `arg` is the `Sink` that `fetch_on_this_thread` passed, alive for the whole
    // transfer.
    let sink = unsafe { &mut *(arg as *mut Sink) };
    let len = size.saturating_mul(count);
    if sink.written + len as u64 > sink.limit {
        sink.too_large = true;
        return 0;
    }
    // SAFETY: libcurl hands `len` readable bytes at `buffer`.
    let bytes = unsafe { std::slice::from_raw_parts(buffer as *const u8, len) };
    match sink.chunks.send(bytes.to_vec()) {
        Ok(()) => {
            sink.written += len as u64;
            len
        }
        Err(_) => {
            sink.gone = true;
            0
        }
    }
}

/// libcurl's progress callback (through GDAL, once a body's size is known): 0 (stop) once a stop
/// was requested.
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

/// How often the asking thread looks for a stop request while it waits.
const STOP_POLL: Duration = Duration::from_millis(100);

/// GETs `url`, or with `form` POSTs it (`application/x-www-form-urlencoded`, never retried), and
/// writes the body into `out`. Even a failed request's body is written: servers explain
/// themselves in it. The transfer runs on a thread of its own, so that a stop request ends the
/// wait within [`STOP_POLL`] whatever libcurl waits for (GDAL reports progress only once a
/// body's size is known); the abandoned transfer ends at its next byte or its timeout.
fn transfer(url: &str, form: Option<&str>, out: &mut dyn Write, limit: u64) -> Result<u64, HttpError> {
    // SAFETY: a query of GDAL's build; no arguments.
    if unsafe { CPLHTTPEnabled() } == 0 {
        return Err(HttpError::Disabled);
    }
    let c_url = CString::new(url).map_err(|_| HttpError::Failed("the URL holds a NUL byte".into()))?;
    let post = form
        .map(|f| CString::new(format!("POSTFIELDS={f}")))
        .transpose()
        .map_err(|_| HttpError::Failed("the form holds a NUL byte".into()))?;
    let (chunks, received) = sync_channel::<Vec<u8>>(64);
    let fetcher = std::thread::spawn(move || fetch_on_this_thread(&c_url, post.as_deref(), chunks, limit));
    let mut written = 0u64;
    let mut io_error = None;
    loop {
        match received.recv_timeout(STOP_POLL) {
            Ok(chunk) => match out.write_all(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(err) => {
                    io_error = Some(err);
                    break;
                }
            },
            Err(RecvTimeoutError::Timeout) if crate::stop::requested() => return Err(HttpError::Stopped),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // The fetcher stops at its next chunk once nobody receives them.
    drop(received);
    if let Some(err) = io_error {
        return Err(HttpError::Io(err));
    }
    let outcome = fetcher
        .join()
        .unwrap_or_else(|_| Err(HttpError::Failed("the transfer's thread panicked".into())));
    if crate::stop::requested() {
        return Err(HttpError::Stopped);
    }
    outcome.map(|()| written)
}

/// The transfer itself, on the calling thread: the body's chunks sent to `chunks`.
fn fetch_on_this_thread(
    url: &CStr,
    post: Option<&CStr>,
    chunks: SyncSender<Vec<u8>>,
    limit: u64,
) -> Result<(), HttpError> {
    let mut sink = Sink {
        chunks,
        written: 0,
        limit,
        too_large: false,
        gone: false,
    };
    let no_retry = c"MAX_RETRY=0";
    let options: Vec<*const c_char> = match post {
        Some(post) => vec![post.as_ptr(), no_retry.as_ptr(), std::ptr::null()],
        None => vec![std::ptr::null()],
    };
    // SAFETY: a plain C call; `sink` outlives it and is only used by `write_body` during it;
    // `options` is a NULL-terminated array of strings that outlive the call; `keep_going`
    // reads an atomic only.
    let result = unsafe {
        CPLHTTPFetchEx(
            url.as_ptr(),
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
    if sink.too_large {
        return Err(HttpError::TooLarge(limit));
    }
    if sink.gone {
        return Err(HttpError::Stopped);
    }
    match error {
        Some(message) => Err(HttpError::Failed(message.trim().trim_end_matches('.').to_string())),
        None => Ok(()),
    }
}

/// GETs `url`, or POSTs the encoded `form` to it, into memory (at most `limit` bytes): the body,
/// also of a failed request (an error status's body says why), and whether it failed.
pub fn exchange(url: &str, form: Option<&str>, limit: u64) -> (Vec<u8>, Result<(), HttpError>) {
    let mut body = Vec::new();
    let result = transfer(url, form, &mut body, limit).map(drop);
    (body, result)
}
