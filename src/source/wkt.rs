//! GEOMETRY values as WKT (well-known text), as MariaDB's `ST_AsText` prints them.
//!
//! MySQL and MariaDB store a geometry as a 4-byte little-endian SRID followed
//! by its WKB (well-known binary, OGC 06-103r4): per geometry a byte-order
//! byte (0 big-endian, 1 little-endian), a u32 type (1 POINT, 2 LINESTRING,
//! 3 POLYGON, 4 MULTIPOINT, 5 MULTILINESTRING, 6 MULTIPOLYGON,
//! 7 GEOMETRYCOLLECTION), then counts (u32) and coordinates (f64 x, y).
//! [`geometry_text`] turns that into `POINT(1 2)`, or EWKT `SRID=4326;POINT(1 2)`
//! when the SRID is not 0.
//!
//! The text is MariaDB's `ST_AsText`, character for character: no space after
//! the type or commas (`POLYGON((0 0,1 0,1 1,0 0))`, `MULTIPOINT(1 1,2 2)`),
//! `GEOMETRYCOLLECTION EMPTY`, and numbers in the shortest form that reads
//! back as the same double, in positional notation for decimal exponents
//! from -14 to 15 (`0.000001`, `100000`) and scientific beyond (`1e16`,
//! `1.2345678901234568e17`, `1e-16`); `-0` is `0`.
//!
//! Malformed WKB (cut short, an unknown type or byte order, trailing bytes,
//! NaN or infinite coordinates, nesting deeper than [`MAX_DEPTH`]) is a
//! [`WkbError`], never a panic; the caller then delivers the hex of the WKB.

use std::fmt::Write as _;

/// GEOMETRYCOLLECTIONs nested deeper than this are refused (a bound on recursion).
pub const MAX_DEPTH: usize = 32;

/// Why WKB could not be read as a geometry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WkbError {
    #[error("fewer than the 4 bytes of an SRID")]
    NoSrid,
    #[error("the WKB ends early (byte {0})")]
    Truncated(usize),
    #[error("unknown byte order {0:#04x} at byte {1}")]
    ByteOrder(u8, usize),
    #[error("unsupported geometry type {0} at byte {1}")]
    GeometryType(u32, usize),
    #[error("a {found} inside a {container} at byte {at}")]
    WrongMember { container: &'static str, found: &'static str, at: usize },
    #[error("a coordinate is not a finite number at byte {0}")]
    NotFinite(usize),
    #[error("geometry collections nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("{0} bytes after the geometry")]
    Trailing(usize),
}

/// A stored geometry (4-byte little-endian SRID, then WKB) as WKT, with an
/// `SRID=<n>;` prefix (EWKT) when the SRID is not 0.
pub fn geometry_text(stored: &[u8]) -> Result<String, WkbError> {
    let (srid, wkb) = match stored {
        [a, b, c, d, wkb @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]), wkb),
        _ => return Err(WkbError::NoSrid),
    };
    let text = wkb_to_wkt(wkb)?;
    Ok(if srid == 0 { text } else { format!("SRID={srid};{text}") })
}

/// One WKB geometry (no SRID) as WKT.
pub fn wkb_to_wkt(wkb: &[u8]) -> Result<String, WkbError> {
    let mut reader = Reader { bytes: wkb, pos: 0, little_endian: true };
    let mut out = String::with_capacity(wkb.len().min(4096));
    reader.geometry(&mut out, 0)?;
    match wkb.len() - reader.pos {
        0 => Ok(out),
        n => Err(WkbError::Trailing(n)),
    }
}

const POINT: u32 = 1;
const LINESTRING: u32 = 2;
const POLYGON: u32 = 3;
const MULTIPOINT: u32 = 4;
const MULTILINESTRING: u32 = 5;
const MULTIPOLYGON: u32 = 6;
const GEOMETRYCOLLECTION: u32 = 7;

fn type_name(t: u32) -> &'static str {
    match t {
        POINT => "POINT",
        LINESTRING => "LINESTRING",
        POLYGON => "POLYGON",
        MULTIPOINT => "MULTIPOINT",
        MULTILINESTRING => "MULTILINESTRING",
        MULTIPOLYGON => "MULTIPOLYGON",
        GEOMETRYCOLLECTION => "GEOMETRYCOLLECTION",
        _ => "unknown",
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The byte order of the geometry being read (each one states its own).
    little_endian: bool,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], WkbError> {
        let chunk = self.bytes.get(self.pos..self.pos + N).ok_or(WkbError::Truncated(self.pos))?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(chunk);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, WkbError> {
        let b = self.take::<4>()?;
        Ok(if self.little_endian { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn f64(&mut self) -> Result<f64, WkbError> {
        let at = self.pos;
        let b = self.take::<8>()?;
        let x = if self.little_endian { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) };
        if x.is_finite() {
            Ok(x)
        } else {
            Err(WkbError::NotFinite(at))
        }
    }

    /// Byte order and type of the next geometry.
    fn header(&mut self) -> Result<u32, WkbError> {
        let at = self.pos;
        self.little_endian = match self.take::<1>()?[0] {
            0 => false,
            1 => true,
            other => return Err(WkbError::ByteOrder(other, at)),
        };
        self.u32()
    }

    /// `x y`
    fn point(&mut self, out: &mut String) -> Result<(), WkbError> {
        let (x, y) = (self.f64()?, self.f64()?);
        number(x, out);
        out.push(' ');
        number(y, out);
        Ok(())
    }

    /// `x y,x y,...` (a count, then the points)
    fn points(&mut self, out: &mut String) -> Result<(), WkbError> {
        let n = self.u32()?;
        for k in 0..n {
            if k > 0 {
                out.push(',');
            }
            self.point(out)?;
        }
        Ok(())
    }

    /// `(x y,...),(x y,...)` (a count of rings, then each ring's points)
    fn rings(&mut self, out: &mut String) -> Result<(), WkbError> {
        let n = self.u32()?;
        for k in 0..n {
            out.push_str(if k > 0 { ",(" } else { "(" });
            self.points(out)?;
            out.push(')');
        }
        Ok(())
    }

    /// The members of a MULTI* or collection: a count, then whole geometries
    /// (each with its own header), all of `member` type unless None.
    fn members(&mut self, out: &mut String, depth: usize, container: u32, member: Option<u32>) -> Result<u32, WkbError> {
        let n = self.u32()?;
        for k in 0..n {
            if k > 0 {
                out.push(',');
            }
            let at = self.pos;
            let t = self.header()?;
            if let Some(expected) = member {
                if t != expected {
                    return Err(WkbError::WrongMember { container: type_name(container), found: type_name(t), at });
                }
            }
            match t {
                POINT if member.is_some() => self.point(out)?,
                LINESTRING if member.is_some() => {
                    out.push('(');
                    self.points(out)?;
                    out.push(')');
                }
                POLYGON if member.is_some() => {
                    out.push('(');
                    self.rings(out)?;
                    out.push(')');
                }
                _ => {
                    // In a collection: the member as a whole geometry, type and all.
                    self.pos = at;
                    self.geometry(out, depth + 1)?;
                }
            }
        }
        Ok(n)
    }

    fn geometry(&mut self, out: &mut String, depth: usize) -> Result<(), WkbError> {
        if depth > MAX_DEPTH {
            return Err(WkbError::TooDeep);
        }
        let at = self.pos;
        let t = self.header()?;
        let name = type_name(t);
        if name == "unknown" {
            return Err(WkbError::GeometryType(t, at));
        }
        let start = out.len();
        out.push_str(name);
        out.push('(');
        let open = out.len();
        let empty = match t {
            POINT => {
                self.point(out)?;
                false
            }
            LINESTRING => {
                self.points(out)?;
                out.len() == open
            }
            POLYGON => {
                self.rings(out)?;
                out.len() == open
            }
            MULTIPOINT => self.members(out, depth, t, Some(POINT))? == 0,
            MULTILINESTRING => self.members(out, depth, t, Some(LINESTRING))? == 0,
            MULTIPOLYGON => self.members(out, depth, t, Some(POLYGON))? == 0,
            _ => self.members(out, depth, t, None)? == 0,
        };
        if empty {
            out.truncate(start);
            out.push_str(name);
            out.push_str(" EMPTY");
        } else {
            out.push(')');
        }
        Ok(())
    }
}

/// A coordinate as MariaDB prints it: the shortest digits that read back as
/// the same double, positional for decimal exponents -14..=15, else `<d>[.<ddd>]e<exp>`.
fn number(x: f64, out: &mut String) {
    if x == 0.0 {
        out.push('0'); // also -0
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` is the shortest round-trip form: `1.2345e17`, `5e-324`.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let len = digits.len() as i32;
    // The decimal point comes after `point` digits (may be <= 0 or > len).
    let point = exponent + 1;
    if point >= -14 && (point <= 15 || len > point) {
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point >= len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (point - len) as usize));
        } else {
            let (int, frac) = digits.split_at(point as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{exponent}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn num(x: f64) -> String {
        let mut s = String::new();
        number(x, &mut s);
        s
    }

    #[test]
    fn numbers_as_mariadb_prints_them() {
        // Each pair checked against MariaDB 10.11's ST_AsText(POINT(x, y)).
        for (x, text) in [
            (1.0, "1"),
            (-0.1, "-0.1"),
            (1e20, "1e20"),
            (1.2345678901234567, "1.2345678901234567"),
            (123456789012345678.0, "1.2345678901234568e17"),
            (0.000001, "0.000001"),
            (1e-7, "0.0000001"),
            (1e300, "1e300"),
            (100000.0, "100000"),
            (1000000.0, "1000000"),
            (1e15, "1e15"),
            (1e16, "1e16"),
            (1.5e15, "1.5e15"),
            (12345678.9, "12345678.9"),
            (-0.0, "0"),
            (0.30000000000000004, "0.30000000000000004"),
            (2.5e-5, "0.000025"),
            (1e-15, "0.000000000000001"),
            (1e-16, "1e-16"),
            (1.2345678901234567e-10, "0.00000000012345678901234568"),
            (123456789012345.67, "123456789012345.67"),
            (1234567890123456.7, "1234567890123456.8"),
            (-1.2345678901234567e-14, "-0.000000000000012345678901234567"),
            (-1e-300, "-1e-300"),
            (f64::MAX, "1.7976931348623157e308"),
            (5e-324, "5e-324"),
            (999999999999999.0, "999999999999999"),
            (-2.5e-15, "-0.0000000000000025"),
        ] {
            assert_eq!(num(x), text, "{x:e}");
        }
    }

    #[test]
    fn every_geometry_type_as_mariadb_prints_it() {
        // HEX(ST_GeomFromText(wkt, 4326)) and ST_AsText from MariaDB 10.11.
        for (stored, text) in [
            ("E61000000101000000000000000000F03F0000000000000040", "SRID=4326;POINT(1 2)"),
            ("000000000101000000000000000000F03F0000000000000040", "POINT(1 2)"),
            (
                "E610000001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F",
                "SRID=4326;LINESTRING(0 0,1 1)",
            ),
            (
                "0000000001030000000200000005000000000000000000000000000000000000000000000000002440000000000000000000000000000024400000000000002440000000000000000000000000000024400000000000000000000000000000000004000000000000000000F03F000000000000F03F0000000000000040000000000000F03F00000000000000400000000000000040000000000000F03F000000000000F03F",
                "POLYGON((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1))",
            ),
            (
                "000000000104000000020000000101000000000000000000F03F000000000000F03F010100000000000000000000400000000000000040",
                "MULTIPOINT(1 1,2 2)",
            ),
            (
                "0000000001050000000200000001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F0102000000020000000000000000000040000000000000004000000000000008400000000000000840",
                "MULTILINESTRING((0 0,1 1),(2 2,3 3))",
            ),
            (
                "000000000106000000020000000103000000010000000400000000000000000000000000000000000000000000000000F03F0000000000000000000000000000F03F000000000000F03F000000000000000000000000000000000103000000010000000400000000000000000014400000000000001440000000000000184000000000000014400000000000001840000000000000184000000000000014400000000000001440",
                "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
            ),
            (
                "000000000107000000020000000101000000000000000000F03F000000000000004001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F",
                "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))",
            ),
        ] {
            assert_eq!(geometry_text(&hex(stored)).as_deref(), Ok(text), "{stored}");
        }
        assert_eq!(geometry_text(&hex("E6100000010700000000000000")).as_deref(), Ok("SRID=4326;GEOMETRYCOLLECTION EMPTY"));
        // Nested collections (MariaDB's ST_GeomFromText makes none, MySQL 8's does).
        let mut nested = hex("00000000");
        nested.extend(hex("010700000001000000"));
        nested.extend(hex("010700000001000000"));
        nested.extend(hex("0101000000000000000000F03F0000000000000040"));
        assert_eq!(geometry_text(&nested).as_deref(), Ok("GEOMETRYCOLLECTION(GEOMETRYCOLLECTION(POINT(1 2)))"));
        // MULTI* members inside a collection, as MariaDB prints them.
        let all = hex("000000000107000000020000000104000000020000000101000000000000000000F03F000000000000F03F0101000000000000000000004000000000000000400103000000010000000400000000000000000000000000000000000000000000000000F03F0000000000000000000000000000F03F000000000000F03F00000000000000000000000000000000");
        assert_eq!(geometry_text(&all).as_deref(), Ok("GEOMETRYCOLLECTION(MULTIPOINT(1 1,2 2),POLYGON((0 0,1 0,1 1,0 0)))"));
    }

    #[test]
    fn big_endian_and_mixed_byte_orders() {
        // POINT(1 2), big-endian.
        assert_eq!(wkb_to_wkt(&hex("00000000013FF00000000000004000000000000000")).as_deref(), Ok("POINT(1 2)"));
        // A little-endian MULTIPOINT holding a big-endian point and a little-endian one.
        let mut wkb = hex("010400000002000000");
        wkb.extend(hex("00000000013FF00000000000004000000000000000"));
        wkb.extend(hex("0101000000000000000000084000000000000010C0"));
        assert_eq!(wkb_to_wkt(&wkb).as_deref(), Ok("MULTIPOINT(1 2,3 -4)"));
    }

    #[test]
    fn malformed_wkb_is_an_error_never_a_panic() {
        let point = hex("0101000000000000000000F03F0000000000000040");
        assert_eq!(geometry_text(&[1, 2, 3]), Err(WkbError::NoSrid));
        assert_eq!(wkb_to_wkt(&[]), Err(WkbError::Truncated(0)));
        assert_eq!(wkb_to_wkt(&point[..20]), Err(WkbError::Truncated(13)));
        assert_eq!(wkb_to_wkt(&hex("0201000000")), Err(WkbError::ByteOrder(2, 0)));
        assert_eq!(wkb_to_wkt(&hex("0108000000")), Err(WkbError::GeometryType(8, 0)));
        assert_eq!(wkb_to_wkt(&hex("01E9030000")), Err(WkbError::GeometryType(1001, 0)), "3D (ISO Z) is not what MySQL stores");
        let mut trailing = point.clone();
        trailing.push(0);
        assert_eq!(wkb_to_wkt(&trailing), Err(WkbError::Trailing(1)));
        assert_eq!(wkb_to_wkt(&hex("0101000000000000000000F87F0000000000000040")), Err(WkbError::NotFinite(5)));
        // A count far beyond the data: fails at the first missing point, without allocating for it.
        assert_eq!(wkb_to_wkt(&hex("0102000000FFFFFFFF")), Err(WkbError::Truncated(9)));
        // A MULTIPOINT holding a LINESTRING.
        assert!(matches!(
            wkb_to_wkt(&hex("0104000000010000000102000000")),
            Err(WkbError::WrongMember { container: "MULTIPOINT", found: "LINESTRING", at: 9 })
        ));
        // Collections nested past the bound.
        let mut deep = Vec::new();
        for _ in 0..=MAX_DEPTH + 1 {
            deep.extend(hex("010700000001000000"));
        }
        deep.extend(&point);
        assert_eq!(wkb_to_wkt(&deep), Err(WkbError::TooDeep));
        // Every prefix and every single-byte corruption of a real value: an answer, no panic.
        let stored = hex("000000000107000000020000000101000000000000000000F03F000000000000004001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F");
        for n in 0..stored.len() {
            let _ = geometry_text(&stored[..n]);
            for b in [0u8, 1, 7, 0x80, 0xff] {
                let mut corrupt = stored.clone();
                corrupt[n] = b;
                let _ = geometry_text(&corrupt);
            }
        }
    }
}
