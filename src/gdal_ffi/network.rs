//! GDAL's network statistics of its virtual file systems (`/vsicurl/`, `/vsis3/`, ...).

/// Resets GDAL's network statistics.
pub fn reset() {
    // SAFETY: resets GDAL's global statistics; no arguments.
    unsafe { gdal_sys::VSINetworkStatsReset() };
}

/// GDAL's network statistics as its JSON report, if it gives one.
pub fn report_json() -> Option<String> {
    // SAFETY: the options list may be null; the returned string is owned by the caller and
    // freed with VSIFree after it is copied.
    unsafe {
        let raw = gdal_sys::VSINetworkStatsGetAsSerializedJSON(std::ptr::null_mut());
        if raw.is_null() {
            return None;
        }
        let text = std::ffi::CStr::from_ptr(raw).to_string_lossy().into_owned();
        gdal_sys::VSIFree(raw.cast());
        Some(text)
    }
}
