//! The GDAL boundary: every call into GDAL's C API that the `gdal` crate does not wrap, each
//! `unsafe` block with the reason it is sound, behind safe functions: [`raster_io`] (strided and
//! resampled reads that a signal can stop, in-memory VRTs), [`vector`] (feature ids, geometry
//! conversion, layer transactions, fields, vector-only datasets), [`srs`] (the one "same CRS or
//! transform" rule), [`http`] (GDAL's HTTP client) and [`network`] (its network statistics); and
//! here, GDAL's error state, block cache and PROJ version. Everything else uses the `gdal` crate.

pub mod http;
pub mod network;
pub mod raster_io;
pub mod srs;
pub mod vector;

/// Sets the size of GDAL's cache of decoded raster blocks, in bytes.
pub fn set_block_cache_bytes(bytes: u64) {
    // SAFETY: GDALSetCacheMax64 takes a plain integer and may be called at any time.
    unsafe { gdal_sys::GDALSetCacheMax64(bytes.min(i64::MAX as u64) as i64) };
}

/// The size of GDAL's cache of decoded raster blocks, in bytes.
pub fn block_cache_bytes() -> u64 {
    // SAFETY: GDALGetCacheMax64 reads a global integer.
    unsafe { gdal_sys::GDALGetCacheMax64() }.max(0) as u64
}

/// The version of PROJ GDAL uses: (major, minor, patch).
pub fn proj_version() -> (i32, i32, i32) {
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    // SAFETY: the three pointers point to live integers this function owns.
    unsafe { gdal_sys::OSRGetPROJVersion(&mut major, &mut minor, &mut patch) };
    (major, minor, patch)
}

/// The last message GDAL logged on this thread.
pub fn last_error() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a NUL-terminated string owned by GDAL's
    // thread-local error state (never freed by the caller), or null.
    let message = unsafe { gdal_sys::CPLGetLastErrorMsg() };
    if message.is_null() {
        return "unknown GDAL error".into();
    }
    // SAFETY: non-null and NUL-terminated; copied before any other GDAL call on this thread.
    unsafe { std::ffi::CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

/// Clears GDAL's error state on this thread, so that [`failed_since_reset`] says whether a later
/// call failed.
pub fn reset_errors() {
    // SAFETY: resets thread-local state; no arguments.
    unsafe { gdal_sys::CPLErrorReset() };
}

/// Whether GDAL reported a failure on this thread since the last [`reset_errors`].
pub fn failed_since_reset() -> bool {
    // SAFETY: reads thread-local state; no arguments.
    unsafe { gdal_sys::CPLGetLastErrorType() == gdal_sys::CPLErr::CE_Failure }
}
