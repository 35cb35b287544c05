//! Vector calls the `gdal` crate does not offer (or offers with a loss): any feature id, a
//! geometry's presence, geometries made plain 2-D and linear, a filter's mistakes found by
//! reading, layer transactions, a geometry column's name, fields with a subtype or a default,
//! and a vector-only dataset made with creation options.

use std::ffi::CString;
use std::path::Path;

use gdal::vector::{Feature, Geometry, Layer, LayerAccess, OGRFieldType};
use gdal::{Dataset, DriverManager};

/// The feature's id, `None` for OGR's "no id" (-1). The gdal crate drops every negative id.
pub fn feature_id(feature: &Feature<'_>) -> Option<i64> {
    // SAFETY: the feature handle is valid while `feature` is borrowed.
    let fid = unsafe { gdal_sys::OGR_F_GetFID(feature.c_feature()) };
    (fid != -1).then_some(fid)
}

/// Whether `geometry` holds a geometry (the gdal crate hands out empty wrappers for features
/// without one).
pub fn has_geometry(geometry: &Geometry) -> bool {
    // SAFETY: only the handle's value is read, not what it points to.
    !unsafe { geometry.c_geometry() }.is_null()
}

/// The geometry as plain 2-D linear shapes: Z and M dropped, curves linearised, surfaces (TINs,
/// polyhedral surfaces, triangles) as multipolygons. `None` if GDAL cannot convert it.
pub fn planar_2d(geometry: &Geometry) -> Option<Geometry> {
    use gdal::vector::OGRwkbGeometryType as T;
    let flat = gdal::vector::geometry_type_flatten(geometry.geometry_type());
    // SAFETY: the clone is owned here; each step either returns a new owned handle (the old one
    // destroyed or consumed, as OGR documents for GetLinearGeometry and ForceToMultiPolygon) or
    // works in place; the final handle is destroyed after its WKB is copied out.
    unsafe {
        let mut handle = gdal_sys::OGR_G_Clone(geometry.c_geometry());
        if handle.is_null() {
            return None;
        }
        if gdal_sys::OGR_G_HasCurveGeometry(handle, 0) != 0 {
            let linear = gdal_sys::OGR_G_GetLinearGeometry(handle, 0.0, std::ptr::null_mut());
            gdal_sys::OGR_G_DestroyGeometry(handle);
            handle = linear;
        }
        if matches!(flat, T::wkbTIN | T::wkbPolyhedralSurface | T::wkbTriangle) {
            handle = gdal_sys::OGR_G_ForceToMultiPolygon(handle);
        }
        if handle.is_null() {
            return None;
        }
        gdal_sys::OGR_G_Set3D(handle, 0);
        gdal_sys::OGR_G_SetMeasured(handle, 0);
        let wkb = wkb_of(handle);
        gdal_sys::OGR_G_DestroyGeometry(handle);
        Geometry::from_wkb(&wkb?).ok()
    }
}

/// The little-endian WKB of a geometry handle.
///
/// # Safety
/// `handle` is a valid geometry handle.
unsafe fn wkb_of(handle: gdal_sys::OGRGeometryH) -> Option<Vec<u8>> {
    // SAFETY: the buffer is exactly the size OGR says the WKB takes.
    unsafe {
        let size = gdal_sys::OGR_G_WkbSize(handle).max(0) as usize;
        let mut wkb = vec![0u8; size];
        let status = gdal_sys::OGR_G_ExportToWkb(handle, gdal_sys::OGRwkbByteOrder::wkbNDR, wkb.as_mut_ptr());
        (status == gdal_sys::OGRErr::OGRERR_NONE).then_some(wkb)
    }
}

/// Reads the first feature of `layer` and rewinds it; returns whether GDAL failed meanwhile
/// (drivers that hand an attribute filter to their database only find a mistake in it then).
pub fn first_read_fails(layer: &mut Layer<'_>) -> bool {
    super::reset_errors();
    // SAFETY: the layer handle is valid while borrowed; the feature returned is owned here and
    // destroyed at once.
    unsafe {
        let first = gdal_sys::OGR_L_GetNextFeature(layer.c_layer());
        if !first.is_null() {
            gdal_sys::OGR_F_Destroy(first);
        }
        let failed = super::failed_since_reset();
        gdal_sys::OGR_L_ResetReading(layer.c_layer());
        failed
    }
}

/// Starts a transaction on `layer`; `false` when its driver has none (rows are then written
/// through).
pub fn start_transaction(layer: &impl LayerAccess) -> bool {
    // SAFETY: the layer handle is valid while borrowed.
    unsafe { gdal_sys::OGR_L_StartTransaction(layer.c_layer()) == gdal_sys::OGRErr::OGRERR_NONE }
}

/// Commits the transaction of `layer`; the error is GDAL's message.
pub fn commit_transaction(layer: &impl LayerAccess) -> Result<(), String> {
    // SAFETY: the layer handle is valid while borrowed.
    let status = unsafe { gdal_sys::OGR_L_CommitTransaction(layer.c_layer()) };
    if status == gdal_sys::OGRErr::OGRERR_NONE {
        Ok(())
    } else {
        Err(super::last_error())
    }
}

/// Writes what the layer (and its dataset, for metadata) holds to disk now.
pub fn sync_to_disk(layer: &impl LayerAccess) -> Result<(), String> {
    // SAFETY: the layer handle is valid while borrowed.
    let status = unsafe { gdal_sys::OGR_L_SyncToDisk(layer.c_layer()) };
    if status == gdal_sys::OGRErr::OGRERR_NONE {
        Ok(())
    } else {
        Err(super::last_error())
    }
}

/// The name of a layer's geometry column (empty when the driver has none).
pub fn geometry_column(layer: &impl LayerAccess) -> String {
    // SAFETY: the layer handle is valid while borrowed; the name is owned by the layer and
    // copied at once.
    unsafe {
        let name = gdal_sys::OGR_L_GetGeometryColumn(layer.c_layer());
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    }
}

/// A field to create with more than the gdal crate sets: a boolean subtype, a default value.
pub struct FieldSpec<'a> {
    /// Field name.
    pub name: &'a str,
    /// OGR type.
    pub field_type: OGRFieldType::Type,
    /// Width (0: none).
    pub width: i32,
    /// An integer field holding booleans.
    pub boolean: bool,
    /// Default value, as SQL (`CURRENT_TIMESTAMP`).
    pub default: Option<&'a str>,
}

/// Creates `field` on `layer`; the error is GDAL's message.
pub fn create_field(layer: &impl LayerAccess, field: &FieldSpec<'_>) -> Result<(), String> {
    let name = CString::new(field.name).map_err(|_| "a field name holds a NUL byte".to_string())?;
    let default = field
        .default
        .map(CString::new)
        .transpose()
        .map_err(|_| "a field default holds a NUL byte".to_string())?;
    // SAFETY: the definition is created, used and destroyed here; OGR_L_CreateField copies it;
    // the strings outlive the calls; the layer handle is valid while borrowed.
    let status = unsafe {
        let defn = gdal_sys::OGR_Fld_Create(name.as_ptr(), field.field_type);
        gdal_sys::OGR_Fld_SetWidth(defn, field.width);
        if field.boolean {
            gdal_sys::OGR_Fld_SetSubType(defn, gdal_sys::OGRFieldSubType::OFSTBoolean);
        }
        if let Some(default) = &default {
            gdal_sys::OGR_Fld_SetDefault(defn, default.as_ptr());
        }
        let status = gdal_sys::OGR_L_CreateField(layer.c_layer(), defn, 1);
        gdal_sys::OGR_Fld_Destroy(defn);
        status
    };
    if status == gdal_sys::OGRErr::OGRERR_NONE {
        Ok(())
    } else {
        Err(super::last_error())
    }
}

/// Creates a vector-only dataset (no bands, no pixel type) at `path` with `driver` and dataset
/// creation options `options` (`KEY=VALUE`); the error is GDAL's message.
pub fn create_vector_dataset(driver: &str, path: &Path, options: &[String]) -> Result<Dataset, String> {
    let mut list = gdal::cpl::CslStringList::new();
    for option in options {
        list.add_string(option).map_err(|e| e.to_string())?;
    }
    let handle = DriverManager::get_driver_by_name(driver).map_err(|e| e.to_string())?;
    let name = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: the driver handle is valid while `handle` lives; the name and options outlive the
    // call; a vector-only dataset is created as `create_vector_only` does, with options.
    let created = unsafe {
        gdal_sys::GDALCreate(
            handle.c_driver(),
            name.as_ptr(),
            0,
            0,
            0,
            gdal_sys::GDALDataType::GDT_Unknown,
            list.as_ptr(),
        )
    };
    if created.is_null() {
        return Err(super::last_error());
    }
    // SAFETY: GDAL returned a new dataset handle that nothing else owns.
    Ok(unsafe { Dataset::from_c_dataset(created) })
}
