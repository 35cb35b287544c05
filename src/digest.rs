//! Fingerprints of contents: a stable 64-bit FNV-1a hash of length-delimited byte strings, the
//! same across builds, machines and runs (unlike the standard library's hasher). Used to tell
//! whether two runs had the same inputs and options, not as a security boundary.

/// A stable 64-bit fingerprint (FNV-1a) of some bytes, as 16 hex digits; stable across builds and
/// machines, unlike the standard library's hasher.
#[derive(Debug, Clone)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    /// Adds `bytes`, with their length (so that ("ab", "c") and ("a", "bc") differ).
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// The fingerprint as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_fnv1a_and_length_delimited() {
        let mut a = Fingerprint::default();
        a.add(b"ab").add(b"c");
        let mut b = Fingerprint::default();
        b.add(b"a").add(b"bc");
        assert_ne!(a.hex(), b.hex());
        let mut c = Fingerprint::default();
        c.add(b"ab").add(b"c");
        assert_eq!(a.hex(), c.hex());
    }
}
