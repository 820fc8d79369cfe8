//! The classic hex view of a blob that is nothing layerpipe can decode: rows of
//! `offset  hex  ascii`, 16 bytes each, as `xxd` and `hexdump -C` show them. Only the
//! first [`HEX_BYTES`] are shown, so a page of it stays small whatever the blob.

/// Bytes shown in a hex view: 4 KiB, 256 rows.
pub const HEX_BYTES: usize = 4096;

/// Bytes in one row.
const ROW: usize = 16;

/// One row of a hex view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexRow {
    /// The row's first byte's offset, 8 hex digits.
    pub offset: String,
    /// The row's bytes in hex, two digits and a space each, an extra space after the
    /// eighth; padded to a whole row's width, so the ASCII column lines up in a `<pre>`.
    pub hex: String,
    /// The row's bytes as ASCII, `.` for each byte that is not printable.
    pub ascii: String,
}

/// The hex view of `bytes`, at most their first [`HEX_BYTES`].
pub fn rows(bytes: &[u8]) -> Vec<HexRow> {
    let shown = &bytes[..bytes.len().min(HEX_BYTES)];
    shown
        .chunks(ROW)
        .enumerate()
        .map(|(i, chunk)| {
            let mut hex = String::with_capacity(ROW * 3 + 1);
            for at in 0..ROW {
                match chunk.get(at) {
                    Some(b) => hex.push_str(&format!("{b:02x} ")),
                    None => hex.push_str("   "),
                }
                if at == 7 {
                    hex.push(' ');
                }
            }
            let ascii =
                chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
            HexRow { offset: format!("{:08x}", i * ROW), hex, ascii }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_like_hexdump() {
        let rows = rows(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].offset, "00000000");
        assert_eq!(rows[0].hex, "7f 45 4c 46 02 01 01 00  00 00 00 00 00 00 00 00 ");
        assert_eq!(rows[0].ascii, ".ELF............");
        assert_eq!(rows[1].offset, "00000010");
        assert_eq!(rows[1].hex, format!("03 00 3e 00{}", " ".repeat(38)));
        assert_eq!(rows[1].hex.len(), rows[0].hex.len());
        assert_eq!(rows[1].ascii, "..>.");
    }

    #[test]
    fn only_the_first_4_kib_are_shown() {
        let rows = rows(&[0u8; 10_000]);
        assert_eq!(rows.len(), HEX_BYTES / 16);
        assert_eq!(rows.last().unwrap().offset, "00000ff0");
    }
}
