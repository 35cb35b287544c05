//! Raster reads that the `gdal` crate does not offer: several bands in one strided call, straight
//! into a chip buffer, from a fractional source window (GDAL's `RasterIOEx` with its extra
//! arguments), each stoppable by a signal; and the in-memory VRT `gdal_translate` would make.

use std::ffi::{c_char, c_int, c_void, CString};

use anyhow::Result;
use gdal::raster::ResampleAlg;
use gdal::Dataset;

/// Whether reads are abandoned: the run is stopping ([`crate::stop`]), and long reads (a whole
/// image) end at GDAL's next progress report.
pub fn reads_aborted() -> bool {
    crate::stop::requested()
}

/// GDAL's progress callback for reads: stops them once the run is stopping.
extern "C" fn keep_reading(_: f64, _: *const c_char, _: *mut c_void) -> c_int {
    c_int::from(!reads_aborted())
}

fn extra_arg(alg: ResampleAlg) -> gdal_sys::GDALRasterIOExtraArg {
    // SAFETY: a plain C struct; all-zero is GDAL's own initial state before the version is set.
    let mut arg: gdal_sys::GDALRasterIOExtraArg = unsafe { std::mem::zeroed() };
    arg.nVersion = 1;
    arg.eResampleAlg = alg.to_gdal();
    arg.pfnProgress = Some(keep_reading);
    arg
}

/// A source window of whole pixels, `(col, row, width, height)`, with the fractional window it
/// stands for when that is not whole pixels (GDAL then resamples from exactly it).
#[derive(Debug, Clone, Copy)]
pub struct SourceWindow {
    /// Whole source pixels read.
    pub pixels: (isize, isize, usize, usize),
    /// The exact fractional source window `(col, row, width, height)`, if not whole pixels.
    pub fractional: Option<(f64, f64, f64, f64)>,
}

/// Where a read lands: planes of `plane` (width, height) pixels, one per band, one after
/// another in `out`, the read filling `dst` (x, y, width, height) of each.
#[derive(Debug, Clone, Copy)]
pub struct Destination {
    /// The rectangle of each plane that the read fills.
    pub dst: (usize, usize, usize, usize),
    /// Plane size.
    pub plane: (usize, usize),
}

/// Reads `bands` (1-based) of `dataset` over `source`, resampled with `resampling`, as float32
/// into `out` laid out as `to` says. The error is GDAL's message (or that the read was stopped).
pub fn read_bands_f32(
    dataset: &Dataset,
    bands: &[usize],
    source: SourceWindow,
    resampling: ResampleAlg,
    to: Destination,
    out: &mut [f32],
) -> Result<(), ReadError> {
    let (w, h) = to.plane;
    let (x, y, dw, dh) = to.dst;
    // The strided writes stay inside `out`: every band's plane, and the rectangle inside it.
    assert!(x + dw <= w && y + dh <= h && out.len() >= bands.len() * w * h && dw > 0 && dh > 0);
    let mut band_map: Vec<c_int> = bands.iter().map(|&b| b as c_int).collect();
    let mut extra = extra_arg(resampling);
    if let Some((c, r, fw, fh)) = source.fractional {
        extra.bFloatingPointWindowValidity = 1;
        (extra.dfXOff, extra.dfYOff, extra.dfXSize, extra.dfYSize) = (c, r, fw, fh);
    }
    let (sc, sr, sw, sh) = source.pixels;
    let start = y * w + x;
    // SAFETY: `out[start..]` holds every byte GDAL writes: `band_map.len()` planes of `w * h`
    // float32 values at a band stride of `4 * w * h` bytes and a line stride of `4 * w`, each
    // receiving `dw` x `dh` values from (x, y), inside the plane (asserted above); `band_map` and
    // `extra` live through the call; the dataset handle is valid while `dataset` is borrowed.
    let status = unsafe {
        gdal_sys::GDALDatasetRasterIOEx(
            dataset.c_dataset(),
            gdal_sys::GDALRWFlag::GF_Read,
            sc as c_int,
            sr as c_int,
            sw as c_int,
            sh as c_int,
            out[start..].as_mut_ptr().cast(),
            dw as c_int,
            dh as c_int,
            gdal_sys::GDALDataType::GDT_Float32,
            band_map.len() as c_int,
            band_map.as_mut_ptr(),
            4,
            (4 * w) as i64,
            (4 * w * h) as i64,
            &mut extra,
        )
    };
    check(status)
}

/// Reads band `band` of `band_owner` over the whole-pixel `window` (col, row, width, height),
/// resampled with `resampling` to `size` (width, height) float32 values in `out`.
pub fn read_band_resampled_f32(
    band: &gdal::raster::RasterBand<'_>,
    window: (isize, isize, usize, usize),
    resampling: ResampleAlg,
    size: (usize, usize),
    out: &mut [f32],
) -> Result<(), ReadError> {
    assert_eq!(out.len(), size.0 * size.1, "the buffer holds the resampled window");
    let mut extra = extra_arg(resampling);
    // SAFETY: `out` holds exactly `size.0 * size.1` float32 values, written with the default
    // (packed) strides; `extra` lives through the call; the band handle is valid while borrowed.
    let status = unsafe {
        gdal_sys::GDALRasterIOEx(
            band.c_rasterband(),
            gdal_sys::GDALRWFlag::GF_Read,
            window.0 as c_int,
            window.1 as c_int,
            window.2 as c_int,
            window.3 as c_int,
            out.as_mut_ptr().cast(),
            size.0 as c_int,
            size.1 as c_int,
            gdal_sys::GDALDataType::GDT_Float32,
            0,
            0,
            &mut extra,
        )
    };
    check(status)
}

/// Why a read failed.
#[derive(Debug)]
pub enum ReadError {
    /// The run is stopping.
    Stopped,
    /// GDAL's message.
    Gdal(String),
}

fn check(status: gdal_sys::CPLErr::Type) -> Result<(), ReadError> {
    if status == gdal_sys::CPLErr::CE_None {
        Ok(())
    } else if reads_aborted() {
        Err(ReadError::Stopped)
    } else {
        Err(ReadError::Gdal(super::last_error()))
    }
}

/// An in-memory VRT of `source` made as `gdal_translate` would with `args`.
pub fn translate_to_vrt(source: &Dataset, args: &[String]) -> Result<Dataset> {
    let strings = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv: Vec<*mut c_char> = strings.iter().map(|s| s.as_ptr() as *mut c_char).collect();
    argv.push(std::ptr::null_mut());
    // SAFETY: `argv` is a NULL-terminated list of NUL-terminated strings that outlive the
    // call (GDAL copies them).
    let options = unsafe { gdal_sys::GDALTranslateOptionsNew(argv.as_mut_ptr(), std::ptr::null_mut()) };
    if options.is_null() {
        anyhow::bail!("gdal_translate options {}: {}", args.join(" "), super::last_error());
    }
    let mut usage_error: c_int = 0;
    let empty = CString::new("")?;
    // SAFETY: `options` is valid until freed just after; the source handle is valid while
    // `source` is borrowed; the empty name asks for a dataset in memory (VRT driver).
    let handle = unsafe {
        let handle = gdal_sys::GDALTranslate(empty.as_ptr(), source.c_dataset(), options, &mut usage_error);
        gdal_sys::GDALTranslateOptionsFree(options);
        handle
    };
    if handle.is_null() || usage_error != 0 {
        anyhow::bail!("making its VRT: {}", super::last_error());
    }
    // SAFETY: GDAL returned a new dataset handle that nothing else owns.
    Ok(unsafe { Dataset::from_c_dataset(handle) })
}

/// The files a dataset is made of (the image, its `.aux.xml`, overviews, a VRT's sources), as
/// GDAL lists them; empty for datasets that have none (in memory, remote).
pub fn file_list(dataset: &Dataset) -> Vec<String> {
    // SAFETY: the dataset handle is valid while borrowed; the returned NULL-terminated list of
    // NUL-terminated strings is owned by the caller, copied, and freed with CSLDestroy.
    unsafe {
        let list = gdal_sys::GDALGetFileList(dataset.c_dataset());
        if list.is_null() {
            return Vec::new();
        }
        let mut files = Vec::new();
        let mut i = 0;
        while !(*list.add(i)).is_null() {
            files.push(std::ffi::CStr::from_ptr(*list.add(i)).to_string_lossy().into_owned());
            i += 1;
        }
        gdal_sys::CSLDestroy(list);
        files
    }
}
